#pragma once
// Which architecture a Hugging Face folder holds, from its config.json's model_type: the programs
// take the modality (text or images) from their base folder.
#include <nlohmann/json_fwd.hpp>

#include <string>

namespace cgm {

enum class ModelFamily { t5, beit };

// model_type "t5" or "beit"; anything else (or none) is an Error naming `source`.
ModelFamily model_family(const nlohmann::json & config, const std::string & source);
// The family of the model folder `dir` (its config.json), after require_model_folder(dir).
ModelFamily model_family_of(const std::string & dir);

// `dir`, given where a base model is expected, is not another kind of folder the programs write:
// a LoRA adapter (adapter_config.json), a gate (gate_config.json) or a dataset (dataset.json) is an
// Error naming the folder, what it is and where to pass it, rather than "config.json: cannot open".
void require_model_folder(const std::string & dir);

}  // namespace cgm
