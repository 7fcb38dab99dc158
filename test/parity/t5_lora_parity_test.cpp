// LoRA on T5 against peft: every fixture of kind "t5_lora" (logits with the adapter, each LoRA
// gradient, the loss after one AdamW step, merged weights).
#include "adapters/lora.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

struct LoraFixtureModel {
    T5Model     model;
    LoraAdapter adapter;
};

LoraFixtureModel load_fixture(const Fixture & f) {
    T5Model     model   = T5Model::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
    LoraAdapter adapter = load_lora(f.path(f.manifest["adapter_dir"]), model.linear_modules());
    attach_lora(model.linear_modules(), adapter);
    return { std::move(model), std::move(adapter) };
}

}  // namespace

TEST_CASE("LoRA on T5 matches peft: hidden states, logits, loss, generation", "[parity][lora]") {
    for (const Fixture & f : fixtures_or_skip("t5_lora", "LoRA parity")) {
        auto [model, adapter] = load_fixture(f);
        // Every adapter tensor peft wrote is loaded, under its name and shape.
        const auto & names = f.manifest["adapter_tensor_names"];
        REQUIRE(adapter.layers.size() * 2 == names.size());
        for (const auto & [name, tensor] : adapter.peft_tensors()) {
            INFO(name);
            REQUIRE(names.contains(name));
            REQUIRE(tensor.sizes().vec() == names[name].get<std::vector<int64_t>>());
        }
        const T5Output out = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"),
                                           f.input("labels"), true);
        for (size_t i = 0; i < out.encoder_hidden.size(); ++i) {
            const std::string name = "encoder_hidden_states." + std::to_string(i);
            CGM_REQUIRE_CLOSE(f, name, out.encoder_hidden[i], f.get(name));
        }
        CGM_REQUIRE_CLOSE(f, "logits", out.logits, f.get("logits"));
        CGM_REQUIRE_CLOSE(f, "loss", out.loss, f.get("loss"));

        const at::Tensor   steps = f.get("generate_step_logits");
        const T5Generation gen   = model.generate(f.input("input_ids"), f.input("attention_mask"), steps.size(0), true);
        REQUIRE(at::equal(gen.ids.cpu(), f.get("generated_ids")));
        for (size_t s = 0; s < gen.step_logits.size(); ++s) {
            CGM_REQUIRE_CLOSE(f, "generate step " + std::to_string(s), gen.step_logits[s], steps[static_cast<int64_t>(s)]);
        }
    }
}

TEST_CASE("LoRA gradients and one AdamW step match peft + torch.optim.AdamW", "[parity][lora]") {
    for (const Fixture & f : fixtures_of_kind("t5_lora")) {
        auto [model, adapter] = load_fixture(f);
        for (const auto & p : adapter.parameters()) {
            p.requires_grad_(true);
        }
        const T5Output out = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"),
                                           f.input("labels"));
        out.loss.backward();
        size_t checked = 0;
        for (const auto & [name, tensor] : adapter.peft_tensors()) {
            CGM_REQUIRE_CLOSE(f, "grad/" + name, tensor.grad(), f.get("grad/" + name));
            ++checked;
        }
        // Every gradient the fixture holds was compared.
        size_t expected = 0;
        for (const auto & t : f.manifest["tensors"]) {
            expected += t["name"].get<std::string>().rfind("grad/", 0) == 0;
        }
        REQUIRE(checked == expected);
        // The base stays frozen: no gradient reaches it.
        for (const auto & [name, tensor] : model.named_parameters()) {
            INFO(name);
            REQUIRE(!tensor.grad().defined());
        }

        AdamW optimizer(adapter.parameters(), AdamWOptions{ 0.9, 0.999, 1e-8, 0.01 });
        optimizer.step(1e-2);
        const T5Output after = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"),
                                             f.input("labels"));
        CGM_REQUIRE_CLOSE(f, "loss_after_adamw_step", after.loss, f.get("loss_after_adamw_step"));
    }
}

TEST_CASE("merging LoRA into the base weights keeps the logits", "[parity][lora]") {
    for (const Fixture & f : fixtures_of_kind("t5_lora")) {
        auto [model, adapter] = load_fixture(f);
        merge_lora(model.linear_modules(), adapter);
        const T5Output out = model.forward(f.input("input_ids"), f.input("attention_mask"), f.input("decoder_input_ids"));
        CGM_REQUIRE_CLOSE(f, "logits after merge", out.logits, f.get("logits"));
    }
}
