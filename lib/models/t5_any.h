#pragma once
// Any T5 model folder the programs write, ready to run: a base or fully fine-tuned checkpoint
// (config.json), or a LoRA adapter (adapter_config.json) on its base.
#include "adapters/lora.h"
#include "models/t5_base.h"

#include <optional>
#include <string>

namespace cgm {

struct LoadedT5 {
    T5Base                     base;
    std::optional<LoraAdapter> adapter;
    std::string                kind;  // "checkpoint" or "lora"
};

// base_override: the base for an adapter (default: its adapter_config.json's
// base_model_name_or_path, taken as given, then relative to the adapter folder).
LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run);

// The base folder an adapter names, resolved as load_t5_any does.
std::string adapter_base_dir(const std::string & adapter_dir, const std::string & base_override);

}  // namespace cgm
