#pragma once
// A trained gate's folder: gate_config.json (base and experts by path, gate settings) and
// gate.safetensors (the gate weights only; the experts stay in their own folders).
//
// Paths in gate_config.json: "paths": "relative" when the base, the experts and the gate folder
// share a folder below the filesystem root (an experiment tree, which can then be moved or copied
// whole): each path relative to the gate folder, and "written_in" the gate folder's absolute path
// then, used when the gate folder alone has moved. "paths": "absolute" otherwise.
#include "adapters/lora_mixture.h"
#include "adapters/output_mixture.h"
#include "adapters/xlora.h"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace cgm {

// cgm: a gate per module on its own input; xlora: peft's X-LoRA scalings from the input's hidden states.
enum class GateKind { cgm, xlora };
GateKind    parse_gate_kind(const std::string & name);  // "cgm" | "xlora"; an Error otherwise
std::string gate_kind_name(GateKind kind);

struct GateConfig {
    std::string              base;
    std::vector<ExpertSpec>  experts;
    GateKind                 gate   = GateKind::cgm;
    MixMode                  mix    = MixMode::example;
    int64_t                  hidden = 4;
    std::vector<std::string> targets;  // module names; empty: every module with experts
    bool                     train_experts = false;  // the experts were trained too: gate.safetensors holds them
    XLoraConfig              xlora;                  // with gate "xlora"
    OutputMixSettings        output;                 // with mix "output"

    // Paths as described above, for a gate_config.json in `folder`.
    nlohmann::json    to_json(const std::string & folder) const;
    // `source`: the file read (its folder is where relative paths start).
    static GateConfig from_json(const nlohmann::json & j, const std::string & source);
};

// Writes gate.safetensors (gate tensors, and the experts when trained), then gate_config.json,
// into `dir` (created if needed), atomically.
void save_gate_dir(const std::string & dir, const GateConfig & config, const NamedTensors & tensors);

GateConfig read_gate_config(const std::string & dir);

}  // namespace cgm
