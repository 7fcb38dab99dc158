#pragma once
// The folders the programs write, attached to any model (AdaptableModel): a LoRA adapter
// (adapter_config.json, PEFT's layout) or a trained gate over LoRA experts (gate_config.json);
// and the static mixtures of experts that evaluation builds for ablations.
#include "adapters/gate_config.h"
#include "adapters/lora.h"
#include "adapters/lora_mixture.h"
#include "adapters/output_mixture.h"
#include "adapters/xlora.h"
#include "models/adaptable_model.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

enum class FolderKind { model, lora, gate };

// A gate folder (gate_config.json), else an adapter (adapter_config.json), else a model
// (config.json); a folder with none of them, or no folder, is an Error naming it.
FolderKind folder_kind(const std::string & dir);

// The model folder under `dir`: itself for a model, the base an adapter or gate names (a
// relative name is tried as given, then relative to the folder), or base_override when given.
std::string base_dir_of(const std::string & dir, const std::string & base_override);

// What is attached to a model.
struct Adapters {
    FolderKind                   kind = FolderKind::model;
    std::optional<LoraAdapter>   lora;
    std::shared_ptr<LoraMixture> mixture;  // experts of a gate folder or of a static mixture
    std::shared_ptr<XLoraGate>   xlora;
    std::shared_ptr<OutputMixture> output;  // mix "output": the gate over whole experts' outputs
    std::optional<GateConfig>    gate;
    bool                         gated = false;  // the gate routes (no static mixture replaced it)
    // What runs, for reports: "checkpoint", "lora", "cgm", "xlora", "expert NAME", "all experts", "static mixture".
    std::string description = "checkpoint";

    // The modules whose gate weights are logged for routing reports (empty: no gate).
    std::vector<std::string> routed_modules() const;
    // The log to fill while predicting, for routing reports; nullptr without a routing gate.
    GateLog * gate_log();
    // The experts' names, in mixture order (empty without a mixture).
    std::vector<std::string> expert_names() const;
};

// Attaches the adapter or the gate (its experts and trained weights) that `dir` holds to `model`,
// the base they were trained on; a model folder attaches nothing.
Adapters attach_folder(AdaptableModel & model, const std::string & dir, c10::ScalarType dtype);

// The experts and the gate `config` describes, attached to `model` with fresh gate weights (seeded):
// what cgm-train trains and a gate folder fills. Experts that train stay float32. Errors: fewer
// than 2 experts, or an expert whose adapter_config.json names a base folder other than config.base.
Adapters attach_gate(AdaptableModel & model, const GateConfig & config, c10::ScalarType dtype, uint64_t seed);
// The tensors a gate folder holds (gate.safetensors): the gate's, and the experts' when they train.
NamedTensors gate_tensors(const Adapters & adapters);

// Ablations without the gate: a static mixture of the experts (of a gate folder, or `experts`
// put on a base checkpoint): one expert by name, fixed weights, or (experts given, neither of the
// others) all experts at weight 1; `merge` folds it into the base weights. Empty: no change.
// Fixed weights are finite and >= 0 and need not sum to 1 (PEFT's add_weighted_adapter); giving
// both experts_only and fixed_weights is an Error.
struct StaticMixture {
    std::vector<ExpertSpec> experts;
    std::string             experts_only;
    std::vector<double>     fixed_weights;
    bool                    merge = false;
};
void apply_static_mixture(AdaptableModel & model, Adapters & adapters, const StaticMixture & mix, c10::ScalarType dtype);

}  // namespace cgm
