#pragma once
// cgm-train's flags for output-level mixtures and the gate regularisers, and the combinations
// they refuse (each an Error naming the flag).
#include "adapters/gate_config.h"

#include <CLI/CLI.hpp>

#include <string>

namespace cgm {

struct GateTrainingFlags {
    std::string       combiner = "expectation";
    std::string       gate_input = "embedding";
    bool              escort   = false;
    OutputMixSettings output;  // the numeric settings, filled by the flags
};

void add_gate_training_flags(CLI::App & app, GateTrainingFlags & flags);

// Completes config.output from the flags (with --top-k and --temperature, shared with X-LoRA) and
// refuses what does not fit together: output-mixture flags without --mix output, --mix output
// with an X-LoRA gate or --gate-targets, penalties that need whole experts on layer-level gates,
// --dual-temperature without --train-experts or with a sampling/argmax combiner, --top-k beyond
// the experts, temperatures with the (scale-free) escort transform, regularisers on X-LoRA gates.
// Returns the penalties on layer-level gates (--importance, --entropy); an output mixture's are in
// config.output.
GateRegularisers apply_gate_training_flags(const CLI::App & app, const GateTrainingFlags & flags, GateConfig & config);

}  // namespace cgm
