#include "models/model_family.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace cgm {

ModelFamily model_family(const nlohmann::json & config, const std::string & source) {
    const std::string type = config.is_object() && config.contains("model_type") && config["model_type"].is_string()
                                 ? config["model_type"].get<std::string>()
                                 : std::string();
    if (type == "t5") {
        return ModelFamily::t5;
    }
    if (type == "beit") {
        return ModelFamily::beit;
    }
    fail(source, type.empty() ? "no model_type (expected t5 or beit)" : "model_type '" + type + "' is not supported (expected t5 or beit)");
}

ModelFamily model_family_of(const std::string & dir) {
    const std::string path = (std::filesystem::path(dir) / "config.json").string();
    return model_family(read_json_file(path), path);
}

}  // namespace cgm
