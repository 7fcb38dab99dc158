#pragma once
// Any BEiT folder the programs write, ready to run: a base or fully fine-tuned checkpoint, a LoRA
// adapter (with its saved head) on its base, or a trained gate over LoRA experts on theirs.
#include "adapters/adapter_folder.h"
#include "models/beit_base.h"

#include <string>

namespace cgm {

struct LoadedBeit {
    BeitBase base;
    Adapters adapters;
};

// base_override: the base for an adapter or gate folder (default: the one it names).
LoadedBeit load_beit_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                         c10::Device device);

}  // namespace cgm
