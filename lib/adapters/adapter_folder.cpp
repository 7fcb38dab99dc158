#include "adapters/adapter_folder.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

namespace {

// An adapter's base_model_name_or_path: as given, then relative to the adapter folder.
std::string adapter_base_dir(const std::string & adapter_dir) {
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

}  // namespace

FolderKind folder_kind(const std::string & dir) {
    if (!fs::is_directory(dir)) {
        fail(dir, "not a directory");
    }
    if (fs::exists(fs::path(dir) / "gate_config.json")) {
        return FolderKind::gate;
    }
    if (fs::exists(fs::path(dir) / "adapter_config.json")) {
        return FolderKind::lora;
    }
    if (fs::exists(fs::path(dir) / "config.json")) {
        return FolderKind::model;
    }
    fail(dir, "holds no config.json (a model), adapter_config.json (a LoRA adapter) or gate_config.json (a gate)");
}

std::string base_dir_of(const std::string & dir, const std::string & base_override) {
    const FolderKind kind = folder_kind(dir);
    if (kind == FolderKind::model) {
        return dir;
    }
    if (!base_override.empty()) {
        return base_override;
    }
    return kind == FolderKind::gate ? read_gate_config(dir).base : adapter_base_dir(dir);
}

Adapters attach_folder(AdaptableModel & model, const std::string & dir, c10::ScalarType dtype) {
    switch (folder_kind(dir)) {
        case FolderKind::gate: {
            Adapters a = attach_gate(model, read_gate_config(dir), dtype, 0);
            load_into(SafetensorsReader((fs::path(dir) / "gate.safetensors").string()), gate_tensors(a));
            return a;
        }
        case FolderKind::lora: {
            Adapters a;
            a.kind        = FolderKind::lora;
            a.description = "lora";
            a.lora        = load_lora(dir, model.linear_modules(), dtype);
            attach_lora(model.linear_modules(), *a.lora);
            return a;
        }
        case FolderKind::model: break;
    }
    return {};
}

Adapters attach_gate(AdaptableModel & model, const GateConfig & config, c10::ScalarType dtype, uint64_t seed) {
    Adapters a;
    a.kind    = FolderKind::gate;
    a.gate    = config;
    a.mixture = std::make_shared<LoraMixture>(model.linear_modules(), config.experts,
                                              config.train_experts ? c10::kFloat : dtype);
    if (config.gate == GateKind::xlora) {
        a.xlora = XLoraGate::attach(model, *a.mixture, config.xlora, seed);
    } else {
        a.mixture->attach_cgm(config.mix, config.hidden, config.targets, seed);
    }
    if (config.train_experts) {
        a.mixture->train_experts();
    }
    a.description = gate_kind_name(config.gate);
    a.gated       = true;
    return a;
}

NamedTensors gate_tensors(const Adapters & adapters) {
    NamedTensors tensors = adapters.xlora ? adapters.xlora->parameters() : adapters.mixture->gate_parameters();
    if (adapters.gate && adapters.gate->train_experts) {
        const NamedTensors experts = adapters.mixture->expert_parameters();
        tensors.insert(tensors.end(), experts.begin(), experts.end());
    }
    return tensors;
}

std::vector<std::string> Adapters::routed_modules() const {
    if (!gated) {
        return {};
    }
    return xlora ? xlora->modules() : mixture->gated_modules();
}

void apply_static_mixture(AdaptableModel & model, Adapters & adapters, const StaticMixture & mix, c10::ScalarType dtype) {
    if (!mix.experts.empty()) {
        if (adapters.kind != FolderKind::model) {
            fail("--expert", "needs a base checkpoint as --model, not a " + adapters.description + " folder");
        }
        adapters.mixture     = std::make_shared<LoraMixture>(model.linear_modules(), mix.experts, dtype);
        adapters.description = "mixture";
    }
    if (mix.experts_only.empty() && mix.fixed_weights.empty() && mix.experts.empty()) {
        if (mix.merge) {
            fail("--merge", "needs --fixed-weights, --experts-only or --expert");
        }
        return;
    }
    if (!adapters.mixture) {
        fail(mix.experts_only.empty() ? "--fixed-weights" : "--experts-only", "needs a gate folder or --expert experts");
    }
    adapters.gated              = false;
    std::vector<double> weights = mix.fixed_weights;
    if (!mix.experts_only.empty()) {
        const auto & list = adapters.mixture->experts();
        const auto   it   = std::find_if(list.begin(), list.end(), [&](const ExpertSpec & e) { return e.name == mix.experts_only; });
        if (it == list.end()) {
            fail("--experts-only", "no expert named '" + mix.experts_only + "'");
        }
        weights.assign(list.size(), 0.0);
        weights[static_cast<size_t>(it - list.begin())] = 1.0;
        adapters.description = "expert " + mix.experts_only;
    } else if (weights.empty()) {
        weights.assign(static_cast<size_t>(adapters.mixture->num_experts()), 1.0);
        adapters.description = "all experts";
    } else {
        adapters.description = "static mixture";
    }
    if (adapters.xlora) {  // its scaling pass would only cost time now
        adapters.xlora.reset();
        model.set_pre_forward_hook({});
    }
    mix.merge ? adapters.mixture->merge_fixed(weights) : adapters.mixture->attach_fixed(weights);
}

}  // namespace cgm
