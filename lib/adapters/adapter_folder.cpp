#include "adapters/adapter_folder.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {

namespace {

// The base_model_name_or_path of an adapter_config.json ("" when absent or not a string).
std::string named_base(const nlohmann::json & config) {
    const char * key = "base_model_name_or_path";
    return config.is_object() && config.contains(key) && config[key].is_string() ? config[key].get<std::string>() : "";
}

// The folder a base name stands for: as given, then relative to the adapter folder; nothing when
// neither is a folder (a hub name such as "t5-small", or a base moved since).
std::optional<std::string> named_base_dir(const std::string & adapter_dir, const std::string & named) {
    if (fs::is_directory(named)) {
        return named;
    }
    const fs::path relative = fs::path(adapter_dir) / named;
    if (fs::is_directory(relative)) {
        return relative.lexically_normal().string();
    }
    return std::nullopt;
}

// An adapter's base_model_name_or_path: as given, then relative to the adapter folder.
std::string adapter_base_dir(const std::string & adapter_dir) {
    const std::string    config_path = (fs::path(adapter_dir) / "adapter_config.json").string();
    const std::string    named       = named_base(read_json_file(config_path));
    if (named.empty()) {
        fail(config_path, "names no base_model_name_or_path; pass --base DIR");
    }
    const std::optional<std::string> dir = named_base_dir(adapter_dir, named);
    if (!dir) {
        fail(config_path, "base model '" + named + "' not found (as given or relative to the adapter); pass --base DIR");
    }
    return *dir;
}

std::string canonical(const std::string & path) {
    return fs::weakly_canonical(fs::absolute(path)).string();
}

// Each expert is a LoRA adapter (a base or gate folder given as one is an Error naming the expert)
// trained on the gate's base: the folder its adapter_config.json names is the same folder
// (canonical paths). A name that is no folder here (a hub name, a base moved since) cannot be
// compared; the expert's tensor shapes are still checked against the base's modules (load_lora).
void check_expert_bases(const GateConfig & config) {
    if (!fs::is_directory(config.base)) {
        return;
    }
    for (const auto & e : config.experts) {
        const fs::path config_path = fs::path(e.dir) / "adapter_config.json";
        if (!fs::exists(config_path)) {
            try {
                require_adapter_folder(e.dir);
            } catch (const Error & what) {
                fail("--expert " + e.name, what.what());
            }
            continue;  // no folder at all: load_lora names the missing file
        }
        const std::string named = named_base(read_json_file(config_path.string()));
        if (named.empty()) {
            continue;
        }
        const std::optional<std::string> dir = named_base_dir(e.dir, named);
        if (!dir) {
            spdlog::info("--expert {}: its base '{}' ({}) is not a folder here; only its tensor shapes are checked "
                         "against the base", e.name, named, config_path.string());
        } else if (!fs::equivalent(*dir, config.base)) {
            fail("--expert " + e.name, e.dir + " was trained on base " + canonical(*dir) + " (its adapter_config.json), "
                                       "not on --base " + canonical(config.base));
        }
    }
}

// Fixed weights multiply each expert's LoRA delta, as the weights of PEFT's add_weighted_adapter:
// finite and >= 0, with no need to sum to 1 (all experts at weight 1 is the default mixture).
void check_fixed_weights(const std::vector<double> & weights) {
    for (size_t i = 0; i < weights.size(); ++i) {
        if (!std::isfinite(weights[i]) || weights[i] < 0) {
            std::ostringstream value;
            value << weights[i];
            fail("--fixed-weights", "weight " + value.str() + " (expert " + std::to_string(i + 1) +
                                        ") must be finite and >= 0 (the weights need not sum to 1)");
        }
    }
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
    if (fs::exists(fs::path(dir) / "dataset.json")) {
        fail(dir, "this folder is a dataset (dataset.json from prepare-data), not a model; pass its splits as --data");
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
    if (config.experts.size() < 2) {
        fail("--expert", "a gate mixes at least 2 experts, got " + std::to_string(config.experts.size()) +
                             " (a single adapter runs without a gate: evaluate --model DIR)");
    }
    check_expert_bases(config);
    Adapters a;
    a.kind    = FolderKind::gate;
    a.gate    = config;
    a.mixture = std::make_shared<LoraMixture>(model.linear_modules(), config.experts,
                                              config.train_experts ? c10::kFloat : dtype);
    if (config.gate == GateKind::xlora) {
        a.xlora = XLoraGate::attach(model, *a.mixture, config.xlora, seed);
    } else if (config.mix == MixMode::output) {
        a.output = std::make_shared<OutputMixture>(*a.mixture, model.hidden_size(), config.hidden, config.output, seed, model.device());
        model.set_output_mixture(a.output);
    } else {
        a.mixture->attach_cgm(config.mix, config.hidden, config.targets, seed);
    }
    if (config.train_experts) {
        a.mixture->train_experts();
    }
    a.description = config.mix == MixMode::output ? "output mixture" : gate_kind_name(config.gate);
    a.gated       = true;
    try {
        model.check_adapters();
    } catch (...) {  // the layers point into the mixture, which goes with `a`
        detach_adapters(model.linear_modules());
        model.set_output_mixture(nullptr);
        throw;
    }
    return a;
}

NamedTensors gate_tensors(const Adapters & adapters) {
    NamedTensors tensors = adapters.xlora    ? adapters.xlora->parameters()
                           : adapters.output ? adapters.output->parameters()
                                             : adapters.mixture->gate_parameters();
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
    if (output) {
        return { "output" };
    }
    return xlora ? xlora->modules() : mixture->gated_modules();
}

GateLog * Adapters::gate_log() {
    return routed_modules().empty() ? nullptr : &mixture->log();
}

std::vector<std::string> Adapters::expert_names() const {
    std::vector<std::string> names;
    if (mixture) {
        for (const auto & e : mixture->experts()) {
            names.push_back(e.name);
        }
    }
    return names;
}

void apply_static_mixture(AdaptableModel & model, Adapters & adapters, const StaticMixture & mix, c10::ScalarType dtype) {
    if (!mix.experts_only.empty() && !mix.fixed_weights.empty()) {
        fail("--experts-only", "and --fixed-weights both set the experts' weights; give one of them");
    }
    check_fixed_weights(mix.fixed_weights);
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
    adapters.xlora.reset();  // its scaling pass stops with it
    if (adapters.output) {  // the experts' deltas are mixed inside the modules instead
        adapters.output.reset();
        model.set_output_mixture(nullptr);
    }
    mix.merge ? adapters.mixture->merge_fixed(weights) : adapters.mixture->attach_fixed(weights);
}

}  // namespace cgm
