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

void require_model_folder(const std::string & dir) {
    namespace fs = std::filesystem;
    const fs::path d(dir);
    if (fs::exists(d) && !fs::is_directory(d)) {
        fail(dir, "not a folder (a base is a model folder with config.json, from save-base)");
    }
    // The same order as evaluate reads a --model folder: a gate, else an adapter, else a model.
    if (fs::exists(d / "gate_config.json")) {
        fail(dir, "this folder is a gate (gate_config.json); pass it as --model, and its base as --base");
    }
    if (fs::exists(d / "adapter_config.json")) {
        fail(dir, "this folder is a LoRA adapter (adapter_config.json); pass it as --model or --expert, and its base as --base");
    }
    if (!fs::exists(d / "config.json") && fs::exists(d / "dataset.json")) {
        fail(dir, "this folder is a dataset (dataset.json from prepare-data); pass its splits as --train/--val/--data, "
                  "and a model folder from save-base as --base");
    }
}

ModelFamily model_family_of(const std::string & dir) {
    require_model_folder(dir);
    const std::string path = (std::filesystem::path(dir) / "config.json").string();
    return model_family(read_json_file(path), path);
}

}  // namespace cgm
