#include "models/chunked_attention.h"

#include "models/dropout.h"

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <limits>

namespace cgm {
namespace {

// One block of query rows against all keys, its rows handled last first (the order of the bias
// terms). q: [B, H, t, dk] -> [B, H, t, dk]
at::Tensor attend_block(const at::Tensor & q, const at::Tensor & k, const at::Tensor & v, const std::vector<at::Tensor> & bias,
                        const AttentionPlan & plan) {
    at::Tensor scores = at::matmul(q.flip(2), k.transpose(-1, -2)).to(at::kFloat);  // [B, H, t, Tk], last row first
    for (const at::Tensor & term : bias) {
        scores.add_(term);  // the product's backward needs q and k, not its result
    }
    if (plan.topk > 0 && plan.topk < scores.size(-1)) {
        // The k largest per query survive (ties: whichever the topk kernel returns); the softmax
        // then runs over those alone, as the research code's softmax over its top-k scores.
        const at::Tensor top  = std::get<1>(scores.topk(plan.topk, -1, /*largest=*/true, /*sorted=*/false));
        const at::Tensor keep = at::zeros_like(scores, scores.options().dtype(at::kBool)).scatter_(-1, top, true);
        scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
    }
    const at::Tensor probs = dropout(at::softmax(scores, -1).to(q.scalar_type()), plan.dropout);
    return at::matmul(probs, v).flip(2);
}

// Calls f(start, len) for the blocks of `chunk` query rows that cover tq rows, in order.
template <class F> void for_each_block(int64_t tq, int64_t chunk, F && f) {
    for (int64_t start = 0; start < tq; start += chunk) {
        f(start, std::min(chunk, tq - start));
    }
}

// Every block in order, concatenated: [B, H, Tq, dk]. Without a graph, each block's
// intermediates are freed before the next.
at::Tensor attend_blocks(const at::Tensor & q, const at::Tensor & k, const at::Tensor & v, const at::Tensor & table,
                         const BiasRows & bias, const AttentionPlan & plan) {
    std::vector<at::Tensor> out;
    for_each_block(q.size(2), plan.q_chunk, [&](int64_t start, int64_t len) {
        out.push_back(attend_block(q.narrow(2, start, len), k, v, bias(table, start, len), plan));
    });
    return at::cat(out, 2);
}

// What the backward pass needs besides the saved tensors.
struct BlockRecipe : torch::CustomClassHolder {
    BiasRows      bias;
    AttentionPlan plan;
    at::Tensor    rng_state;  // the device generator's state before the first block (dropout only)
    bool          has_table = false;  // autograd takes no undefined input: a placeholder stands in

    at::Tensor table(const at::Tensor & input) const { return has_table ? input : at::Tensor(); }
};

at::Generator generator_of(const at::Tensor & t) {
    return at::globalContext().defaultGenerator(t.device());
}

// Runs every block in order; the forward pass without a graph, the backward pass block by block
// with one (autograd recomputation: the [B, H, C, Tk] intermediates of one block at a time).
struct BlockwiseAttention : torch::autograd::Function<BlockwiseAttention> {
    static at::Tensor forward(torch::autograd::AutogradContext * ctx, const at::Tensor & q, const at::Tensor & k,
                              const at::Tensor & v, const at::Tensor & table_input, c10::intrusive_ptr<BlockRecipe> recipe) {
        const at::Tensor table = recipe->table(table_input);
        if (recipe->plan.dropout > 0) {
            recipe->rng_state = generator_of(q).get_state();
        }
        ctx->save_for_backward({ q, k, v, table_input });
        ctx->saved_data["recipe"] = c10::IValue::make_capsule(recipe);
        return attend_blocks(q, k, v, table, recipe->bias, recipe->plan);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext * ctx,
                                                   torch::autograd::variable_list grad_out) {
        const auto saved  = ctx->get_saved_variables();
        const auto recipe = c10::static_intrusive_pointer_cast<BlockRecipe>(ctx->saved_data["recipe"].toCapsule());
        const at::Tensor & q = saved[0];
        // Leaves standing in for the inputs, so each block's graph ends at them.
        const auto leaf = [](const at::Tensor & t) { return t.defined() ? t.detach().requires_grad_(t.requires_grad()) : t; };
        const at::Tensor k = leaf(saved[1]), v = leaf(saved[2]), table = leaf(recipe->table(saved[3]));
        std::vector<at::Tensor> wrt_shared;  // what every block adds a gradient to
        for (const at::Tensor & t : { k, v, table }) {
            if (t.defined() && t.requires_grad()) {
                wrt_shared.push_back(t);
            }
        }
        at::Generator gen = generator_of(q);
        at::Tensor    resume_state;
        if (recipe->rng_state.defined()) {
            resume_state = gen.get_state();
            gen.set_state(recipe->rng_state);  // the same masks as in the forward pass, block by block
        }
        std::vector<at::Tensor> dq_blocks, d_shared(wrt_shared.size());
        at::AutoGradMode        with_graph(true);
        for_each_block(q.size(2), recipe->plan.q_chunk, [&](int64_t start, int64_t len) {
            at::Tensor    q_block = q.narrow(2, start, len).detach().requires_grad_(q.requires_grad());
            const at::Tensor out  = attend_block(q_block, k, v, recipe->bias(table, start, len), recipe->plan);
            std::vector<at::Tensor> wrt = wrt_shared;
            if (q.requires_grad()) {
                wrt.push_back(q_block);
            }
            const auto grads = torch::autograd::grad({ out }, wrt, { grad_out[0].narrow(2, start, len) },
                                                     /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
            for (size_t i = 0; i < wrt_shared.size(); ++i) {
                if (grads[i].defined()) {
                    d_shared[i] = d_shared[i].defined() ? d_shared[i] + grads[i] : grads[i];
                }
            }
            if (q.requires_grad()) {
                dq_blocks.push_back(grads.back().defined() ? grads.back() : at::zeros_like(q_block));
            }
        });
        if (resume_state.defined()) {
            gen.set_state(resume_state);
        }
        torch::autograd::variable_list result(5);
        if (!dq_blocks.empty()) {
            result[0] = at::cat(dq_blocks, 2);
        }
        size_t next = 0;
        for (size_t i = 0; i < 3; ++i) {
            const at::Tensor & t = i == 0 ? k : i == 1 ? v : table;
            if (t.defined() && t.requires_grad()) {
                result[i + 1] = d_shared[next++];
            }
        }
        return result;
    }
};

}  // namespace

at::Tensor attend(const at::Tensor & q, const at::Tensor & k, const at::Tensor & v, const at::Tensor & table,
                  const BiasRows & bias, const AttentionPlan & plan) {
    const int64_t tq = q.size(2);
    if (plan.q_chunk <= 0 || plan.q_chunk >= tq) {
        return attend_block(q, k, v, bias(table, 0, tq), plan);
    }
    const bool needs_grad = at::GradMode::is_enabled() &&
                            (q.requires_grad() || k.requires_grad() || v.requires_grad() || (table.defined() && table.requires_grad()));
    if (needs_grad) {
        auto recipe       = c10::make_intrusive<BlockRecipe>();
        recipe->bias      = bias;
        recipe->plan      = plan;
        recipe->has_table = table.defined();
        return BlockwiseAttention::apply(q, k, v, table.defined() ? table : at::empty({ 0 }, q.options()), recipe);
    }
    return attend_blocks(q, k, v, table, bias, plan);  // no graph
}

}  // namespace cgm
