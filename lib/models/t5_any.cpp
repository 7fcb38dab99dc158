#include "models/t5_any.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

std::string adapter_base_dir(const std::string & adapter_dir, const std::string & base_override) {
    if (!base_override.empty()) {
        return base_override;
    }
    const std::string    config_path = (fs::path(adapter_dir) / "adapter_config.json").string();
    const nlohmann::json config      = read_json_file(config_path);
    const std::string    named       = config.value("base_model_name_or_path", "");
    if (named.empty()) {
        fail(config_path, "names no base_model_name_or_path; pass --base DIR");
    }
    if (fs::is_directory(named)) {
        return named;
    }
    const fs::path relative = fs::path(adapter_dir) / named;
    if (fs::is_directory(relative)) {
        return relative.lexically_normal().string();
    }
    fail(config_path, "base model '" + named + "' not found (as given or relative to the adapter); pass --base DIR");
}

LoadedT5 load_t5_any(const std::string & dir, const std::string & base_override, c10::ScalarType dtype,
                     c10::Device device, const T5RunOptions & run) {
    if (!fs::is_directory(dir)) {
        fail(dir, "not a directory");
    }
    if (fs::exists(fs::path(dir) / "adapter_config.json")) {
        T5Base      base    = load_t5_base(adapter_base_dir(dir, base_override), dtype, device, run);
        LoraAdapter adapter = load_lora(dir, base.model.linear_modules(), dtype);
        attach_lora(base.model.linear_modules(), adapter);
        return { std::move(base), std::move(adapter), "lora" };
    }
    if (fs::exists(fs::path(dir) / "config.json")) {
        return { load_t5_base(dir, dtype, device, run), std::nullopt, "checkpoint" };
    }
    fail(dir, "holds neither config.json (a model) nor adapter_config.json (a LoRA adapter)");
}

}  // namespace cgm
