// BEiT against Hugging Face transformers: every fixture of kind "beit" in the fixture index
// (embeddings, every layer's output, the pooled output, logits and loss), bfloat16 against the
// float32 reference, and LoRA on BEiT against peft (kind "beit_lora").
#include "adapters/lora.h"
#include "models/beit.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>

using namespace cgm;
using namespace cgm::test;

TEST_CASE("BEiT matches Hugging Face: hidden states, pooled output, logits, loss", "[parity][beit]") {
    for (const Fixture & f : fixtures_or_skip("beit", "BEiT parity")) {
        const BeitModel  model = BeitModel::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        const BeitOutput out   = model.forward(f.input("pixel_values"), f.input("labels"), /*keep_hidden=*/true);
        const auto       layers = static_cast<size_t>(model.config().num_hidden_layers);
        REQUIRE(out.hidden.size() == layers + 1);
        for (size_t i = 0; i <= layers; ++i) {
            const std::string name = "hidden_states." + std::to_string(i);
            CGM_REQUIRE_CLOSE(f, name, out.hidden[i], f.get(name));
        }
        CGM_REQUIRE_CLOSE(f, "beit.last_hidden_state", out.last_hidden, f.get("beit.last_hidden_state"));
        CGM_REQUIRE_CLOSE(f, "beit.pooler_output", out.pooled, f.get("beit.pooler_output"));
        CGM_REQUIRE_CLOSE(f, "logits", out.logits, f.get("logits"));
        CGM_REQUIRE_CLOSE(f, "loss", out.loss, f.get("loss"));
    }
}

TEST_CASE("BEiT in bfloat16 stays close to the float32 reference", "[parity][beit]") {
    for (const Fixture & f : fixtures_of_kind("beit")) {
        const BeitModel  model = BeitModel::load(f.path(f.manifest["model_dir"]), at::kBFloat16, test_device());
        const BeitOutput out   = model.forward(f.input("pixel_values"), f.input("labels"));
        const at::Tensor expected = f.get("logits");
        // bf16 keeps 8 bits of mantissa: a relative error of a few 2^-8 per layer, not more.
        const double rel = ((out.logits.cpu() - expected).norm() / expected.norm()).item<double>();
        INFO(f.name << ": relative L2 error of bf16 logits " << rel);
        REQUIRE(rel < 0.05);
    }
}

TEST_CASE("LoRA on BEiT matches peft: biases kept, modules_to_save classifier, outputs and gradients",
          "[parity][beit][lora]") {
    for (const Fixture & f : fixtures_or_skip("beit_lora", "BEiT LoRA parity")) {
        BeitModel   model   = BeitModel::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
        LoraAdapter adapter = load_lora(f.path(f.manifest["adapter_dir"]), model.linear_modules());
        attach_lora(model.linear_modules(), adapter);

        // Every tensor peft wrote is loaded, under its name and shape, and nothing else.
        const auto &       names   = f.manifest["adapter_tensor_names"];
        const NamedTensors tensors = adapter.peft_tensors();
        REQUIRE(tensors.size() == names.size());
        for (const auto & [name, tensor] : tensors) {
            INFO(name);
            REQUIRE(names.contains(name));
            REQUIRE(tensor.sizes().vec() == names[name].get<std::vector<int64_t>>());
            tensor.requires_grad_(true);
        }

        const BeitOutput out = model.forward(f.input("pixel_values"), f.input("labels"), /*keep_hidden=*/true);
        for (size_t i = 0; i < out.hidden.size(); ++i) {
            const std::string name = "hidden_states." + std::to_string(i);
            CGM_REQUIRE_CLOSE(f, name, out.hidden[i], f.get(name));
        }
        CGM_REQUIRE_CLOSE(f, "beit.pooler_output", out.pooled, f.get("beit.pooler_output"));
        CGM_REQUIRE_CLOSE(f, "logits", out.logits, f.get("logits"));
        CGM_REQUIRE_CLOSE(f, "loss", out.loss, f.get("loss"));

        // Gradients (eval mode), named by peft's module path: "grad/<saved name>" for LoRA tensors,
        // ".modules_to_save." inside the name for the saved classifier.
        out.loss.backward();
        size_t checked = 0;
        for (const auto & t : f.manifest["tensors"]) {
            const std::string name = t["name"];
            if (name.rfind("grad/", 0) != 0) {
                continue;
            }
            std::string ours = name.substr(5);
            const auto  saved = ours.find(".modules_to_save.");
            if (saved != std::string::npos) {
                ours.replace(saved, 17, ".");
            }
            const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto & kv) { return kv.first == ours; });
            INFO(name << " -> " << ours);
            REQUIRE(it != tensors.end());
            REQUIRE(it->second.grad().defined());
            CGM_REQUIRE_CLOSE(f, name, it->second.grad(), f.get(name));
            ++checked;
        }
        REQUIRE(checked == tensors.size());
    }
}
