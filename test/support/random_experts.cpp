#include "support/random_experts.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

namespace cgm::test {

std::vector<std::vector<std::string>> random_expert_targets() {
    return { { "q", "v" }, { "q", "wo" } };
}

std::vector<ExpertSpec> random_experts(T5Model & model, const TempDir & dir) {
    return random_experts(model, dir, random_expert_targets());
}

std::vector<ExpertSpec> random_experts(AdaptableModel & model, const TempDir & dir,
                                       const std::vector<std::vector<std::string>> & targets) {
    std::vector<ExpertSpec> specs;
    for (size_t e = 0; e < targets.size(); ++e) {
        LoraConfig config;
        config.r                = 2 + static_cast<int64_t>(e);
        config.targets          = targets[e];
        LoraAdapter   adapter   = create_lora(model.linear_modules(), config, e);
        at::Generator gen       = at::make_generator<at::CPUGeneratorImpl>(100 + e);
        c10::NoGradGuard no_grad;
        for (auto & [path, layer] : adapter.layers) {
            layer->B.copy_(at::randn(layer->B.sizes(), gen) * 0.5);
        }
        const std::string path = dir.file("expert" + std::to_string(e));
        save_lora(adapter, path);
        specs.push_back({ "e" + std::to_string(e), path });
    }
    return specs;
}

}  // namespace cgm::test
