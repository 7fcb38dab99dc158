// Stacked experts against peft: every fixture of kind "t5_lora_mix" (three adapters with
// different ranks, alphas and target modules; each alone, all at once, and a weighted mixture).
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

at::Tensor logits_of(const T5Model & model, const Fixture & f) {
    return model.forward(f.get("input_ids"), f.get("attention_mask"), {}, f.get("labels")).logits;
}

}  // namespace

TEST_CASE("stacked LoRA experts match peft: each alone, all three, a weighted mixture", "[parity][mixture]") {
    const auto fixtures = fixtures_of_kind("t5_lora_mix");
    REQUIRE(!fixtures.empty());
    for (const Fixture & f : fixtures) {
        T5Model     model = T5Model::load(f.path(f.manifest["base_model_dir"]));
        LoraMixture mixture(model.linear_modules(), expert_specs(f), at::kFloat);
        REQUIRE(mixture.num_experts() == 3);

        for (int64_t e = 0; e < 3; ++e) {
            std::vector<double> one_hot(3, 0.0);
            one_hot[static_cast<size_t>(e)] = 1.0;
            mixture.attach_fixed(one_hot);
            CGM_REQUIRE_CLOSE(f, "logits_a" + std::to_string(e), logits_of(model, f), f.get("logits_a" + std::to_string(e)));
        }
        mixture.attach_fixed({ 1.0, 1.0, 1.0 });
        const T5Output all3 = model.forward(f.get("input_ids"), f.get("attention_mask"), {}, f.get("labels"));
        CGM_REQUIRE_CLOSE(f, "logits_all3", all3.logits, f.get("logits_all3"));
        CGM_REQUIRE_CLOSE(f, "loss_all3", all3.loss, f.get("loss_all3"));

        const auto weights = f.manifest["mix_weights"].get<std::vector<double>>();
        mixture.attach_fixed(weights);
        const T5Output mix = model.forward(f.get("input_ids"), f.get("attention_mask"), {}, f.get("labels"));
        CGM_REQUIRE_CLOSE(f, "logits_mix", mix.logits, f.get("logits_mix"));
        CGM_REQUIRE_CLOSE(f, "loss_mix", mix.loss, f.get("loss_mix"));

        // Folding the static mixture into the weights gives the same logits.
        mixture.merge_fixed(weights);
        CGM_REQUIRE_CLOSE(f, "logits_mix after merge", logits_of(model, f), f.get("logits_mix"));
    }
}

TEST_CASE("peft's add_weighted_adapter 'cat' result loads as a plain LoRA with the same logits", "[parity][mixture]") {
    for (const Fixture & f : fixtures_of_kind("t5_lora_mix")) {
        T5Model     model   = T5Model::load(f.path(f.manifest["base_model_dir"]));
        LoraAdapter adapter = load_lora(f.path(f.manifest["mix_adapter_dir"]), model.linear_modules());
        attach_lora(model.linear_modules(), adapter);
        CGM_REQUIRE_CLOSE(f, "logits_mix via the cat adapter", logits_of(model, f), f.get("logits_mix"));
    }
}
