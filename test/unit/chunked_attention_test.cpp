// attend(): blocks of query rows equal one block (outputs and gradients, with top-k and with
// dropout replayed in the recomputing backward pass), and top-k against a per-query reference.
#include "models/chunked_attention.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

using namespace cgm;

namespace {

constexpr int64_t kB = 2, kH = 3, kTq = 11, kTk = 13, kDk = 4;

struct Inputs {
    at::Tensor q, k, v, table;  // [B, H, Tq, dk], [B, H, Tk, dk] x2, [Tq, Tk] (the bias, learnable)
};

Inputs random_inputs(uint64_t seed) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
    return { at::randn({ kB, kH, kTq, kDk }, g).requires_grad_(), at::randn({ kB, kH, kTk, kDk }, g).requires_grad_(),
             at::randn({ kB, kH, kTk, kDk }, g).requires_grad_(), at::randn({ kTq, kTk }, g).requires_grad_() };
}

// [B, 1, 1, Tk]: the last key masked out for batch row 1.
at::Tensor padding() {
    at::Tensor p    = at::zeros({ kB, 1, 1, kTk });
    p[1][0][0][kTk - 1] = std::numeric_limits<float>::lowest();
    return p;
}

// Rows of the table as the bias (last row first, as attend() takes them), and the padding.
std::vector<at::Tensor> bias_rows(const at::Tensor & table, int64_t start, int64_t len) {
    return { table.narrow(0, start, len).flip(0), padding() };  // [len, Tk], [B, 1, 1, Tk]
}

struct Result {
    at::Tensor out, dq, dk, dv, dtable;
};

// Output and the gradients of sum(out * weights) (weights fixed, so every row matters differently).
Result run(const Inputs & in, const AttentionPlan & plan) {
    const at::Tensor out = attend(in.q, in.k, in.v, in.table, bias_rows, plan);
    at::Generator    g   = at::make_generator<at::CPUGeneratorImpl>(99);
    const auto grads = torch::autograd::grad({ (out * at::randn(out.sizes(), g)).sum() }, { in.q, in.k, in.v, in.table });
    return { out.detach(), grads[0], grads[1], grads[2], grads[3] };
}

void require_same(const Result & a, const Result & b, double tol) {
    REQUIRE(at::allclose(a.out, b.out, tol, tol));
    REQUIRE(at::allclose(a.dq, b.dq, tol, tol));
    REQUIRE(at::allclose(a.dk, b.dk, tol, tol));
    REQUIRE(at::allclose(a.dv, b.dv, tol, tol));
    REQUIRE(at::allclose(a.dtable, b.dtable, tol, tol));
}

}  // namespace

TEST_CASE("attention over blocks of query rows equals one block, outputs and gradients", "[unit][attention]") {
    const Inputs in = random_inputs(1);
    for (const int64_t topk : { int64_t{ 0 }, int64_t{ 3 } }) {
        const Result whole = run(in, { 0, topk, 0.0 });
        for (const int64_t chunk : { 1, 4, 10 }) {
            INFO("top-k " << topk << ", chunk " << chunk);
            require_same(run(in, { chunk, topk, 0.0 }), whole, 1e-5);
        }
    }
}

TEST_CASE("the blockwise backward pass replays each block's dropout mask", "[unit][attention]") {
    const Inputs        in = random_inputs(2);
    const AttentionPlan plan{ 4, 0, 0.3 };
    at::manual_seed(5);
    const Result blockwise = run(in, plan);
    const at::Tensor after = at::randn({ 4 });  // the stream continues as if nothing were recomputed

    // The same blocks in the same order, each through the ordinary autograd graph: the same
    // masks, since each block draws once from the generator.
    at::manual_seed(5);
    std::vector<at::Tensor> blocks;
    for (int64_t start = 0; start < kTq; start += plan.q_chunk) {
        const int64_t len = std::min(plan.q_chunk, kTq - start);
        const auto    rows = [start](const at::Tensor & table, int64_t, int64_t n) { return bias_rows(table, start, n); };
        blocks.push_back(attend(in.q.narrow(2, start, len), in.k, in.v, in.table, rows, { 0, 0, plan.dropout }));
    }
    const at::Tensor out   = at::cat(blocks, 2);
    at::Generator    g     = at::make_generator<at::CPUGeneratorImpl>(99);
    const auto       grads = torch::autograd::grad({ (out * at::randn(out.sizes(), g)).sum() }, { in.q, in.k, in.v, in.table });
    const Result     graph{ out.detach(), grads[0], grads[1], grads[2], grads[3] };
    REQUIRE(at::equal(at::randn({ 4 }), after));
    require_same(blockwise, graph, 1e-6);
    // And dropout did act: without it the result differs.
    REQUIRE(!at::allclose(run(in, { 4, 0, 0.0 }).out, blockwise.out, 1e-3, 1e-3));
}

TEST_CASE("top-k attention keeping every key equals dense attention exactly", "[unit][attention]") {
    const Inputs     in    = random_inputs(3);
    c10::NoGradGuard no_grad;
    const at::Tensor dense = attend(in.q, in.k, in.v, in.table, bias_rows, { 0, 0, 0.0 });
    for (const int64_t topk : { kTk, kTk + 5 }) {
        for (const int64_t chunk : { int64_t{ 0 }, int64_t{ 4 } }) {
            INFO("top-k " << topk << ", chunk " << chunk);
            const at::Tensor out = attend(in.q, in.k, in.v, in.table, bias_rows, { chunk, topk, 0.0 });
            REQUIRE(at::equal(out, chunk == 0 ? dense : attend(in.q, in.k, in.v, in.table, bias_rows, { chunk, 0, 0.0 })));
            REQUIRE(at::allclose(out, dense, 1e-6, 1e-6));
        }
    }
}

TEST_CASE("top-k attention matches a per-query reference: softmax over the k largest biased scores", "[unit][attention]") {
    const Inputs     in = random_inputs(4);
    c10::NoGradGuard no_grad;
    const auto       q = in.q.to(at::kDouble), k = in.k.to(at::kDouble), v = in.v.to(at::kDouble);
    for (const int64_t topk : { 1, 2, 5 }) {
        const at::Tensor out = attend(in.q, in.k, in.v, in.table, bias_rows, { 4, topk, 0.0 });
        at::Tensor       expected = at::zeros({ kB, kH, kTq, kDk }, at::kDouble);
        for (int64_t b = 0; b < kB; ++b) {
            const at::Tensor bias = (in.table + padding()[b][0]).to(at::kDouble);  // [Tq, Tk]
            for (int64_t h = 0; h < kH; ++h) {
                for (int64_t i = 0; i < kTq; ++i) {
                    std::vector<double> score(kTk);
                    for (int64_t j = 0; j < kTk; ++j) {
                        score[j] = (q[b][h][i] * k[b][h][j]).sum().item<double>() + bias[i][j].item<double>();
                    }
                    std::vector<int64_t> order(kTk);
                    std::iota(order.begin(), order.end(), 0);
                    std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] > score[y]; });
                    double total = 0;
                    for (int64_t r = 0; r < topk; ++r) {
                        total += std::exp(score[order[r]] - score[order[0]]);
                    }
                    for (int64_t r = 0; r < topk; ++r) {
                        expected[b][h][i] += std::exp(score[order[r]] - score[order[0]]) / total * v[b][h][order[r]];
                    }
                }
            }
        }
        INFO("top-k " << topk);
        REQUIRE(at::allclose(out.to(at::kDouble), expected, 1e-5, 1e-5));
    }
}
