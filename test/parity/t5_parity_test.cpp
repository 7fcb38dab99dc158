// T5 against Hugging Face transformers: every fixture of kind "t5" in the fixture index.
#include "models/t5.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

void check_forward(const Fixture & f, const T5Model & model, const char * variant) {
    INFO("variant: " << variant);
    const T5Output out =
        model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"), f.input("labels"), true);
    const auto layers = static_cast<size_t>(model.config().num_layers);
    REQUIRE(out.encoder_hidden.size() == layers + 1);
    for (size_t i = 0; i <= layers; ++i) {
        const std::string name = "encoder_hidden_states." + std::to_string(i);
        CGM_REQUIRE_CLOSE(f, name, out.encoder_hidden[i], f.get(name));
    }
    const auto dec_layers = static_cast<size_t>(model.config().num_decoder_layers);
    REQUIRE(out.decoder_hidden.size() == dec_layers + 1);
    for (size_t i = 0; i <= dec_layers; ++i) {
        const std::string name = "decoder_hidden_states." + std::to_string(i);
        CGM_REQUIRE_CLOSE(f, name, out.decoder_hidden[i], f.get(name));
    }
    CGM_REQUIRE_CLOSE(f, "encoder_last_hidden_state", out.encoder_last_hidden, f.get("encoder_last_hidden_state"));
    CGM_REQUIRE_CLOSE(f, "logits", out.logits, f.get("logits"));
    CGM_REQUIRE_CLOSE(f, "loss", out.loss, f.get("loss"));
}

}  // namespace

TEST_CASE("T5 matches Hugging Face: hidden states, logits, loss", "[parity][t5]") {
    for (const Fixture & f : fixtures_or_skip("t5", "T5 parity")) {
        T5Model model = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        check_forward(f, model, "dense");

        // Query chunking bounds memory and must not change the result.
        model.options().q_chunk = 5;
        check_forward(f, model, "q_chunk 5");
        model.options().q_chunk = 0;

        // Top-k with k = d_ff keeps everything.
        model.options().ff_topk = model.config().d_ff;
        check_forward(f, model, "ff_topk d_ff");
    }
}

TEST_CASE("T5 labels without decoder_input_ids are shifted right like Hugging Face", "[parity][t5]") {
    for (const Fixture & f : fixtures_of_kind("t5")) {
        const T5Model model = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        INFO(f.name);
        REQUIRE(at::equal(model.shift_right(f.input("labels")).cpu(), f.input("decoder_input_ids")));
        const T5Output out = model.forward(f.input("input_ids"), f.input("attention_mask"), {}, f.input("labels"));
        CGM_REQUIRE_CLOSE(f, "loss", out.loss, f.get("loss"));
    }
}

TEST_CASE("T5 greedy generation with the KV cache matches Hugging Face step by step", "[parity][t5]") {
    for (const Fixture & f : fixtures_of_kind("t5")) {
        const T5Model      model    = T5Model::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        const at::Tensor   expected = f.get("generate_step_logits");  // [steps, B, V]
        const T5Generation gen =
            model.generate(f.input("input_ids"), f.input("attention_mask"), expected.size(0), /*keep_step_logits=*/true);
        INFO(f.name);
        REQUIRE(at::equal(gen.ids.cpu(), f.get("generated_ids")));
        REQUIRE(static_cast<int64_t>(gen.step_logits.size()) == expected.size(0));
        for (size_t s = 0; s < gen.step_logits.size(); ++s) {
            CGM_REQUIRE_CLOSE(f, "generate_step_logits step " + std::to_string(s), gen.step_logits[s],
                              expected[static_cast<int64_t>(s)]);
        }
    }
}

TEST_CASE("T5 in bfloat16 stays close to the float32 reference", "[parity][t5]") {
    for (const Fixture & f : fixtures_of_kind("t5")) {
        const T5Model  model = T5Model::load(f.path(f.manifest["model_dir"]), at::kBFloat16, test_device());
        const T5Output out   = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"),
                                             f.input("labels"));
        const at::Tensor expected = f.get("logits");
        const double     rel      = ((out.logits.cpu() - expected).norm() / expected.norm()).item<double>();
        INFO(f.name << ": relative L2 error of bf16 logits " << rel);
        REQUIRE(rel < 0.05);
        // The loss relative to its size, as the logits: an absolute bound would depend on the vocabulary.
        const double loss = f.get("loss").item<double>();
        REQUIRE(std::abs(out.loss.item<double>() - loss) / std::abs(loss) < 0.05);
    }
}
