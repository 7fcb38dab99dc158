#pragma once
// How many parameters a model folder runs with, and how many its training trained: the one count
// behind the programs' log lines and the benchmark's table.
#include "adapters/adapter_folder.h"

namespace cgm {

struct ParameterCount {
    int64_t trainable = 0;  // what training this folder changed
    int64_t total     = 0;  // everything that runs: base, adapter or experts and gate
};

int64_t numel_of(const NamedTensors & tensors);

// A model folder counts as fully trained (finetune) unless `untrained` (a base as saved); a LoRA
// adapter trains its A, B and saved modules; a gate its own weights (and the experts' when they
// train). A saved module replaces a base module of the same size, so it adds nothing to the total.
ParameterCount count_parameters(const AdaptableModel & model, const Adapters & adapters, bool untrained = false);

}  // namespace cgm
