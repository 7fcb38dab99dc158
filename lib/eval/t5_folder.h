#pragma once
// Any T5 folder the programs write, ready to run: a base or fully fine-tuned checkpoint, a LoRA
// adapter on its base, or a trained gate over LoRA experts on theirs.
#include "adapters/adapter_folder.h"
#include "models/t5_base.h"

#include <string>

namespace cgm {

struct LoadedT5 {
    T5Base   base;
    Adapters adapters;
};

// base_override: the base for an adapter or gate folder (default: the one it names).
LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run);

}  // namespace cgm
