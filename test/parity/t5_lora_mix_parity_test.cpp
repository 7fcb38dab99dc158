// Stacked experts against peft: every fixture of kind "t5_lora_mix" (three adapters with
// different ranks, alphas and target modules; each alone, all at once, and a weighted mixture).
// Adapter NAME's logits are the fixture's logits_NAME; all at once, logits_all<N> / loss_all<N>.
#include "adapters/lora_mixture.h"
#include "models/t5.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

std::vector<ExpertSpec> expert_specs(const Fixture & f) {
    std::vector<ExpertSpec> out;
    for (const auto & [name, dir] : f.manifest["adapter_dirs"].items()) {
        out.push_back({ name, f.path(dir.get<std::string>()) });
    }
    return out;
}

// The fixture's tensor whose name starts with `prefix` (e.g. "logits_all" for logits_all3).
std::string tensor_named(const Fixture & f, const std::string & prefix) {
    for (const auto & t : f.manifest["tensors"]) {
        const std::string name = t["name"].get<std::string>();
        if (name.rfind(prefix, 0) == 0) {
            return name;
        }
    }
    FAIL(f.name << ": no tensor named " << prefix << "*");
    return "";
}

at::Tensor logits_of(const T5Model & model, const Fixture & f) {
    return model.forward(f.input("input_ids"), f.input("attention_mask"), {}, f.input("labels")).logits;
}

}  // namespace

TEST_CASE("stacked LoRA experts match peft: each alone, all at once, a weighted mixture", "[parity][mixture]") {
    for (const Fixture & f : fixtures_or_skip("t5_lora_mix", "stacked-experts parity")) {
        T5Model     model = T5Model::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
        const auto  specs = expert_specs(f);
        LoraMixture mixture(model.linear_modules(), specs, at::kFloat);
        const int64_t n = mixture.num_experts();
        REQUIRE(n == static_cast<int64_t>(f.manifest["adapter_dirs"].size()));

        for (int64_t e = 0; e < n; ++e) {
            std::vector<double> one_hot(static_cast<size_t>(n), 0.0);
            one_hot[static_cast<size_t>(e)] = 1.0;
            mixture.attach_fixed(one_hot);
            const std::string name = "logits_" + specs[static_cast<size_t>(e)].name;
            CGM_REQUIRE_CLOSE(f, name, logits_of(model, f), f.get(name));
        }
        mixture.attach_fixed(std::vector<double>(static_cast<size_t>(n), 1.0));
        const T5Output all = model.forward(f.input("input_ids"), f.input("attention_mask"), {}, f.input("labels"));
        CGM_REQUIRE_CLOSE(f, "logits of all adapters", all.logits, f.get(tensor_named(f, "logits_all")));
        CGM_REQUIRE_CLOSE(f, "loss of all adapters", all.loss, f.get(tensor_named(f, "loss_all")));

        const auto weights = f.manifest["mix_weights"].get<std::vector<double>>();
        mixture.attach_fixed(weights);
        const T5Output mix = model.forward(f.input("input_ids"), f.input("attention_mask"), {}, f.input("labels"));
        CGM_REQUIRE_CLOSE(f, "logits_mix", mix.logits, f.get("logits_mix"));
        CGM_REQUIRE_CLOSE(f, "loss_mix", mix.loss, f.get("loss_mix"));

        // Folding the static mixture into the weights gives the same logits.
        mixture.merge_fixed(weights);
        CGM_REQUIRE_CLOSE(f, "logits_mix after merge", logits_of(model, f), f.get("logits_mix"));
    }
}

TEST_CASE("peft's add_weighted_adapter 'cat' result loads as a plain LoRA with the same logits", "[parity][mixture]") {
    for (const Fixture & f : fixtures_of_kind("t5_lora_mix")) {
        T5Model     model   = T5Model::load(f.path(f.manifest["base_model_dir"]), at::kFloat, test_device());
        LoraAdapter adapter = load_lora(f.path(f.manifest["mix_adapter_dir"]), model.linear_modules());
        attach_lora(model.linear_modules(), adapter);
        CGM_REQUIRE_CLOSE(f, "logits_mix via the cat adapter", logits_of(model, f), f.get("logits_mix"));
    }
}
