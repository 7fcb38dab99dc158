// Query chunking and top-k attention on the fixtures' T5 models and inputs: chunked equals
// unchunked (outputs and every gradient, float32 within 1e-5), top-k keeping every key equals
// dense attention, and cached decoding agrees with the teacher-forced pass under both options.
// Shapes and chunk sizes come from each fixture's own inputs.
#include "adapters/lora.h"
#include "models/t5.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

using namespace cgm;
using namespace cgm::test;

namespace {

struct Pass {
    at::Tensor                        logits, loss;
    std::map<std::string, at::Tensor> grads;  // d loss / d every trainable tensor
};

// Logits, loss and the gradients of the loss with respect to `trainable`.
Pass run(const Fixture & f, const T5Model & model, const NamedTensors & trainable) {
    const T5Output out = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"),
                                       f.input("labels"));
    std::vector<at::Tensor> wrt;
    for (const auto & [name, t] : trainable) {
        wrt.push_back(t);
    }
    const auto grads = torch::autograd::grad({ out.loss }, wrt, {}, false, false, /*allow_unused=*/true);
    Pass       pass{ out.logits.detach(), out.loss.detach(), {} };
    size_t     i = 0;
    for (const auto & [name, t] : trainable) {
        pass.grads[name] = grads[i++];
    }
    return pass;
}

// The largest difference relative to the expected tensor's scale (its largest magnitude, at least
// 1): a logit near 0 beside logits near 10 may differ in its last bits where products run over
// other block sizes.
double scaled_error(const at::Tensor & actual, const at::Tensor & expected) {
    const double scale = std::max(1.0, expected.abs().max().item<double>());
    return (actual - expected).abs().max().item<double>() / scale;
}

void require_same(const Pass & a, const Pass & b, double tol) {
    REQUIRE(scaled_error(a.logits, b.logits) <= tol);
    REQUIRE(scaled_error(a.loss, b.loss) <= tol);
    for (const auto & [name, grad] : b.grads) {
        INFO(name);
        const at::Tensor & other = a.grads.at(name);
        REQUIRE(grad.defined() == other.defined());
        if (grad.defined()) {
            REQUIRE(scaled_error(other, grad) <= tol);
        }
    }
}

// Chunk sizes for a source of `len` tokens: one row, a third, all but one row.
std::vector<int64_t> chunk_sizes(int64_t len) {
    return { 1, std::max<int64_t>(1, len / 3), std::max<int64_t>(1, len - 1) };
}

// Chunked equals unchunked for dense attention and for a small top-k.
void check_chunking(const Fixture & f, T5Model & model, const NamedTensors & trainable) {
    const int64_t len = f.input("input_ids").size(1);
    for (const int64_t topk : { int64_t{ 0 }, std::max<int64_t>(1, len / 4) }) {
        model.options()           = {};
        model.options().attn_topk = topk;
        const Pass whole          = run(f, model, trainable);
        for (const int64_t chunk : chunk_sizes(len)) {
            INFO(f.name << ": attn_topk " << topk << ", q_chunk " << chunk);
            model.options().q_chunk = chunk;
            require_same(run(f, model, trainable), whole, 1e-5);
        }
    }
    model.options() = {};
}

}  // namespace

TEST_CASE("T5 with query chunks equals T5 without: outputs and gradients of every weight", "[parity][t5][chunking]") {
    for (const Fixture & f : fixtures_or_skip("t5", "T5 chunking")) {
        T5Model            model     = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        const NamedTensors trainable = model.named_parameters();
        for (const auto & [name, t] : trainable) {
            t.requires_grad_(true);
        }
        check_chunking(f, model, trainable);
    }
}

TEST_CASE("LoRA on T5 with query chunks equals LoRA without: outputs and LoRA gradients", "[parity][lora][chunking]") {
    for (const Fixture & f : fixtures_or_skip("t5_lora", "LoRA chunking")) {
        T5Model     model   = T5Model::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
        LoraAdapter adapter = load_lora(f.path(f.manifest["adapter_dir"]), model.linear_modules());
        attach_lora(model.linear_modules(), adapter);
        NamedTensors trainable;
        for (const at::Tensor & t : adapter.parameters()) {
            trainable.emplace_back("lora tensor " + std::to_string(trainable.size()), t.requires_grad_(true));
        }
        check_chunking(f, model, trainable);
    }
}

TEST_CASE("T5 top-k attention keeping every source token equals dense attention exactly", "[parity][t5][chunking]") {
    for (const Fixture & f : fixtures_or_skip("t5", "T5 top-k attention")) {
        T5Model          model = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        const int64_t    len   = f.input("input_ids").size(1);
        const at::Tensor dense = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids")).logits;
        model.options().attn_topk = len;
        INFO(f.name);
        REQUIRE(at::equal(model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids")).logits, dense));
        model.options().attn_topk = std::max<int64_t>(1, len / 4);
        REQUIRE(!at::allclose(model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids")).logits,
                              dense, 1e-4, 1e-4));
    }
}

TEST_CASE("T5 cached decoding equals the teacher-forced pass under query chunks and top-k", "[parity][t5][chunking]") {
    for (const Fixture & f : fixtures_of_kind("t5")) {
        T5Model          model = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        const at::Tensor ids = f.input("input_ids"), mask = f.input("attention_mask"), dec = f.input("decoder_input_ids");
        model.options().q_chunk   = std::max<int64_t>(1, ids.size(1) / 3);
        model.options().attn_topk = std::max<int64_t>(1, ids.size(1) / 4);
        const at::Tensor enc  = model.encode(ids, mask);
        const at::Tensor full = model.decode(dec, enc, mask);
        T5DecoderCache   cache;
        for (int64_t t = 0; t < dec.size(1); ++t) {
            INFO(f.name << ": step " << t);
            REQUIRE(at::allclose(model.decode(dec.slice(1, t, t + 1), enc, mask, &cache), full.slice(1, t, t + 1), 1e-5, 1e-5));
        }
    }
}
