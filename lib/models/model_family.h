#pragma once
// Which architecture a Hugging Face folder holds, from its config.json's model_type: the programs
// take the modality (text or images) from their base folder.
#include <nlohmann/json_fwd.hpp>

#include <string>

namespace cgm {

enum class ModelFamily { t5, beit };

// model_type "t5" or "beit"; anything else (or none) is an Error naming `source`.
ModelFamily model_family(const nlohmann::json & config, const std::string & source);
// The family of the model folder `dir` (its config.json).
ModelFamily model_family_of(const std::string & dir);

}  // namespace cgm
