#pragma once
// Any T5 model folder the programs write, ready to run: a base or fully fine-tuned checkpoint
// (config.json), a LoRA adapter (adapter_config.json) on its base, or a trained gate over LoRA
// experts (gate_config.json).
#include "adapters/gate_config.h"
#include "adapters/lora.h"
#include "models/t5_base.h"

#include <memory>
#include <optional>
#include <string>

namespace cgm {

struct LoadedT5 {
    T5Base                       base;
    std::optional<LoraAdapter>   adapter;
    std::shared_ptr<LoraMixture> mixture;  // with a gate folder: experts + trained gates attached
    std::shared_ptr<XLoraGate>   xlora;    // with an X-LoRA gate folder
    std::optional<GateConfig>    gate;
    std::string                  kind;  // "checkpoint", "lora", "cgm" or "xlora"

    // The modules whose gate weights are logged for routing reports (empty: no gate).
    std::vector<std::string> routed_modules() const;
};

// base_override: the base for an adapter (default: its adapter_config.json's
// base_model_name_or_path, taken as given, then relative to the adapter folder).
LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run);

// Ablations without the gate: a static mixture of the experts (of a gate folder, or `experts`
// put on a base checkpoint): one expert by name, fixed weights, or (experts given, neither of the
// others) all experts at weight 1; `merge` folds it into the base weights. Empty: no change.
struct StaticMixture {
    std::vector<ExpertSpec> experts;
    std::string             experts_only;
    std::vector<double>     fixed_weights;
    bool                    merge = false;
};
void apply_static_mixture(LoadedT5 & loaded, const StaticMixture & mix, c10::ScalarType dtype);

// The base folder an adapter names, resolved as load_t5_any does.
std::string adapter_base_dir(const std::string & adapter_dir, const std::string & base_override);

}  // namespace cgm
