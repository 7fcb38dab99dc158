#include "cli/run_settings.h"

#include "core/error.h"
#include "core/sha256.h"

#include <filesystem>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace cgm {
namespace {

std::string kind_of_program(const std::string & program) {
    static const std::map<std::string, std::string> kinds = { { "prepare-data", "dataset" }, { "save-base", "base" },
                                                              { "finetune", "model" },       { "lora-finetune", "lora" },
                                                              { "cgm-train", "gate" },       { "evaluate", "evaluation" } };
    const auto it = kinds.find(program);
    return it == kinds.end() ? program : it->second;
}

// A flag's values as given, else its default: a string, a list for flags given several times or
// taking several values, null when it has neither.
nlohmann::json value_of(const CLI::Option & option) {
    const std::vector<std::string> & given = option.results();
    if (option.count() == 0) {
        const std::string & fallback = option.get_default_str();
        return fallback.empty() ? nlohmann::json() : nlohmann::json(fallback);
    }
    if (option.get_type_size_max() == 0) {  // a flag
        return option.as<bool>() ? "true" : "false";
    }
    const bool many = option.get_expected_max() > 1 || given.size() > 1;
    return many ? nlohmann::json(given) : nlohmann::json(given.front());
}

}  // namespace

RunRecord run_record_of(const CLI::App & app) {
    RunRecord r;
    r.program = app.get_name();
    r.version = CGM_VERSION;
    r.kind    = kind_of_program(r.program);
    r.started = utc_now();
    r.settings = nlohmann::json::object();
    static const std::set<std::string> data_flags  = { "train", "val", "data" };
    static const std::set<std::string> input_flags = { "base", "model", "expert", "run", "zero-shot", "merge", "hf", "tokenizer",
                                                       "init-config", "input", "train", "val", "data" };
    for (const CLI::Option * option : app.get_options()) {
        const std::string name = option->get_single_name();
        if (name.empty() || name == "help" || name == "help-all") {
            continue;
        }
        r.settings[name] = value_of(*option);
        if (name == "overwrite") {
            r.overwrite = option->count() > 0;
        }
        if (!input_flags.count(name)) {
            continue;
        }
        for (std::string value : option->results()) {
            if (name == "expert" || name == "run") {
                value = value.substr(value.find('=') + 1);  // NAME=DIR
            }
            r.inputs.push_back(value);
            std::error_code ec;
            if (data_flags.count(name) && fs::is_regular_file(value, ec)) {
                r.data.push_back({ value, sha256_file(value) });
            }
        }
    }
    return r;
}

}  // namespace cgm
