#include "models/t5_any.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

std::string adapter_base_dir(const std::string & adapter_dir, const std::string & base_override) {
    if (!base_override.empty()) {
        return base_override;
    }
    const std::string    config_path = (fs::path(adapter_dir) / "adapter_config.json").string();
    const nlohmann::json config      = read_json_file(config_path);
    const std::string    named       = config.value("base_model_name_or_path", "");
    if (named.empty()) {
        fail(config_path, "names no base_model_name_or_path; pass --base DIR");
    }
    if (fs::is_directory(named)) {
        return named;
    }
    const fs::path relative = fs::path(adapter_dir) / named;
    if (fs::is_directory(relative)) {
        return relative.lexically_normal().string();
    }
    fail(config_path, "base model '" + named + "' not found (as given or relative to the adapter); pass --base DIR");
}

LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run) {
    if (!fs::is_directory(dir)) {
        fail(dir, "not a directory");
    }
    if (fs::exists(fs::path(dir) / "gate_config.json")) {
        GateConfig gate    = read_gate_config(dir);
        T5Base     base    = load_t5_base(base_override.empty() ? gate.base : base_override, dtype, device, run);
        auto       mixture = std::make_shared<LoraMixture>(base.model.linear_modules(), gate.experts,
                                                         gate.train_experts ? c10::kFloat : dtype);
        LoadedT5     loaded{ std::move(base), std::nullopt, mixture, nullptr, gate, gate.gate };
        NamedTensors tensors;
        if (gate.gate == "xlora") {
            loaded.xlora = XLoraGate::attach(loaded.base.model, *mixture, gate.xlora, 0);
            tensors      = loaded.xlora->parameters();
        } else {
            mixture->attach_cgm(gate.mix, gate.hidden, gate.targets, 0);
            tensors = mixture->gate_parameters();
        }
        if (gate.train_experts) {
            const NamedTensors experts = mixture->expert_parameters();
            tensors.insert(tensors.end(), experts.begin(), experts.end());
        }
        load_into(SafetensorsReader((fs::path(dir) / "gate.safetensors").string()), tensors);
        return loaded;
    }
    if (fs::exists(fs::path(dir) / "adapter_config.json")) {
        T5Base      base    = load_t5_base(adapter_base_dir(dir, base_override), dtype, device, run);
        LoraAdapter adapter = load_lora(dir, base.model.linear_modules(), dtype);
        attach_lora(base.model.linear_modules(), adapter);
        return { std::move(base), std::move(adapter), nullptr, nullptr, std::nullopt, "lora" };
    }
    if (fs::exists(fs::path(dir) / "config.json")) {
        return { load_t5_base(dir, dtype, device, run), std::nullopt, nullptr, nullptr, std::nullopt, "checkpoint" };
    }
    fail(dir, "holds no config.json (a model), adapter_config.json (a LoRA adapter) or gate_config.json (a gate)");
}

std::vector<std::string> LoadedT5::routed_modules() const {
    if (xlora) {
        return xlora->modules();
    }
    return kind == "cgm" ? mixture->gated_modules() : std::vector<std::string>{};
}

void apply_static_mixture(LoadedT5 & loaded, const StaticMixture & mix, c10::ScalarType dtype) {
    if (!mix.experts.empty()) {
        if (loaded.kind != "checkpoint") {
            fail("--expert", "needs a base checkpoint as --model, not a " + loaded.kind + " folder");
        }
        loaded.mixture = std::make_shared<LoraMixture>(loaded.base.model.linear_modules(), mix.experts, dtype);
        loaded.kind    = "mixture";
    }
    if (mix.experts_only.empty() && mix.fixed_weights.empty() && mix.experts.empty()) {
        if (mix.merge) {
            fail("--merge", "needs --fixed-weights, --experts-only or --expert");
        }
        return;
    }
    if (!loaded.mixture) {
        fail(mix.experts_only.empty() ? "--fixed-weights" : "--experts-only", "needs a gate folder or --expert experts");
    }
    std::vector<double> weights = mix.fixed_weights;
    if (!mix.experts_only.empty()) {
        const auto & list = loaded.mixture->experts();
        const auto   it   = std::find_if(list.begin(), list.end(), [&](const ExpertSpec & e) { return e.name == mix.experts_only; });
        if (it == list.end()) {
            fail("--experts-only", "no expert named '" + mix.experts_only + "'");
        }
        weights.assign(list.size(), 0.0);
        weights[static_cast<size_t>(it - list.begin())] = 1.0;
        loaded.kind = "expert " + mix.experts_only;
    } else if (weights.empty()) {
        weights.assign(static_cast<size_t>(loaded.mixture->num_experts()), 1.0);
        loaded.kind = "all experts";
    } else {
        loaded.kind = "static mixture";
    }
    loaded.xlora.reset();  // its scaling pass would only cost time now
    mix.merge ? loaded.mixture->merge_fixed(weights) : loaded.mixture->attach_fixed(weights);
}

}  // namespace cgm
