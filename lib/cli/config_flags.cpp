#include "cli/config_flags.h"

#include "cli/config_file.h"
#include "core/error.h"

#include <filesystem>
#include <map>

namespace fs = std::filesystem;

namespace cgm {
namespace {

// A relative path in a config file, read from the file's folder (as if written from there).
std::string from_folder(const fs::path & folder, const std::string & path) {
    if (path.empty() || fs::path(path).is_absolute()) {
        return path;
    }
    return (folder / path).lexically_normal().string();
}

// What the flag takes, in words, from CLI11's type name: "INT:NONNEGATIVE" -> "a non-negative
// integer", "TEXT:{f32,bf16}" -> "one of f32,bf16", "FLOAT:FLOAT in [0 - 0.99]" -> "a number in
// [0 - 0.99]".
std::string expected_value(const CLI::Option & option) {
    static const std::map<std::string, std::string> nouns = {
        { "INT", "integer" }, { "UINT", "integer" }, { "FLOAT", "number" }, { "TEXT", "string" }
    };
    const std::vector<std::string> parts = CLI::detail::split(option.get_type_name(), ':');
    const auto  noun_it = nouns.find(parts.front());
    std::string noun    = noun_it == nouns.end() ? "value" : noun_it->second;
    std::string sign    = parts.front() == "UINT" ? "non-negative " : "";
    for (size_t i = 1; i < parts.size(); ++i) {
        const std::string & check = parts[i];
        if (check == "NONNEGATIVE" || check == "POSITIVE") {
            sign = check == "POSITIVE" ? "positive " : "non-negative ";
        } else if (!check.empty() && check.front() == '{') {
            return "one of " + check.substr(1, check.size() - 2);
        } else if (check.find(" in [") != std::string::npos) {
            noun += check.substr(check.find(" in ["));
        }
    }
    noun = sign + noun;
    return (noun.front() == 'i' ? "an " : "a ") + noun;
}

std::string quoted_values(const ConfigEntry & e) {
    std::string out;
    for (const ConfigValue & v : e.values) {
        out += (out.empty() ? "'" : ", '") + v.text + "'";
    }
    return out;
}

// The entry's values as the flag takes them: paths (the part after '=' of NAME=PATH) from the
// config file's folder.
std::vector<std::string> flag_values(const CLI::Option & option, const ConfigEntry & e, const fs::path & folder,
                                     const std::string & where) {
    const std::string type = option.get_type_name();
    std::vector<std::string> out;
    for (const ConfigValue & v : e.values) {
        if (type != kPathType && type != kNamedPathType) {
            out.push_back(v.text);
            continue;
        }
        if (v.kind != ConfigValue::Kind::string) {
            fail(where, e.key + ": " + v.text + " is not a path (paths are strings in quotes)");
        }
        if (type == kPathType) {
            out.push_back(from_folder(folder, v.text));
            continue;
        }
        const size_t eq = v.text.find('=');  // NAME=PATH; without '=' the flag's own check names the problem
        out.push_back(eq == std::string::npos ? v.text : v.text.substr(0, eq + 1) + from_folder(folder, v.text.substr(eq + 1)));
    }
    return out;
}

// Hands the entry to its flag and runs the flag's own checks and conversion now, so that a failure
// can name the file, line and key.
void set_from_config(CLI::Option & option, const ConfigEntry & e, const fs::path & folder, const std::string & where) {
    if (e.values.empty()) {
        fail(where, e.key + ": an empty array sets nothing");
    }
    if (option.get_expected_min() == 0) {  // an on/off flag
        if (e.array || e.values.front().kind != ConfigValue::Kind::boolean) {
            fail(where, e.key + ": " + quoted_values(e) + " is not true or false");
        }
        option.add_result(e.values.front().text);
    } else {
        if (e.array && option.get_items_expected_max() <= 1) {
            fail(where, e.key + ": takes one value, not an array");
        }
        option.add_result(flag_values(option, e, folder, where));
    }
    try {
        option.run_callback();
    } catch (const CLI::ParseError &) {
        fail(where, e.key + ": " + quoted_values(e) + " is not " + expected_value(option));
    }
}

void apply_config_file(CLI::App & app, const std::string & path) {
    try {
        const fs::path folder = fs::path(path).parent_path();
        for (const ConfigEntry & e : read_config_file(path, app.get_name())) {
            const std::string where  = path + ":" + std::to_string(e.line);
            CLI::Option *     option = app.get_option_no_throw("--" + e.flag);
            if (option == nullptr || !option->get_configurable()) {
                fail(where, "unknown key '" + e.key + "'");
            }
            if (option->count() == 0) {  // given on the command line: that wins
                set_from_config(*option, e, folder, where);
            }
        }
    } catch (const Error & e) {
        throw CLI::ConfigError(e.what());  // a bad flag: exit code 2
    }
}

}  // namespace

void add_config_option(CLI::App & app) {
    // Applied while CLI11 runs the flags' callbacks: after the command line is read (so its flags are
    // known and win) and before required flags are checked (so a config can supply them).
    app.add_option_function<std::string>(
           "--config", [&app](const std::string & path) { apply_config_file(app, path); },
           "TOML file of flags: keys are flag names (- or _), a [program] table applies to that program only, "
           "relative paths are read from the file's folder; flags on the command line win")
        ->type_name("FILE")
        ->configurable(false);
}

}  // namespace cgm
