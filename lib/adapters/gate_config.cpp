#include "adapters/gate_config.h"

#include "core/error.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

GateKind parse_gate_kind(const std::string & name) {
    if (name == "cgm") {
        return GateKind::cgm;
    }
    if (name == "xlora") {
        return GateKind::xlora;
    }
    throw Error("gate '" + name + "' is not supported (expected cgm or xlora)");
}

std::string gate_kind_name(GateKind kind) {
    return kind == GateKind::xlora ? "xlora" : "cgm";
}

namespace {

fs::path absolute_path(const std::string & path) {
    return fs::absolute(path).lexically_normal();
}

// The folder right below the root on the way to `path` ("/work" for "/work/runs/a"); empty for "/".
fs::path top_folder(const fs::path & path) {
    auto part = path.begin();
    return ++part == path.end() ? fs::path() : path.root_path() / *part;
}

// A stored relative path as a path here: from the folder the file is in now, or, when nothing is
// there (the gate folder moved alone), from the folder it was written in.
std::string resolve(const std::string & stored, const fs::path & here, const fs::path & written_in,
                    const std::string & source) {
    std::error_code ec;
    const fs::path  moved = (here / stored).lexically_normal();
    if (fs::exists(moved, ec) || written_in.empty()) {
        return moved.string();
    }
    const fs::path original = (written_in / stored).lexically_normal();
    if (!fs::exists(original, ec)) {
        return moved.string();  // missing either way: the error names the folder beside this one
    }
    spdlog::info("{}: '{}' is not at {}; using {}, relative to where the gate was written", source, stored,
                 moved.string(), original.string());
    return original.string();
}

}  // namespace

nlohmann::json GateConfig::to_json(const std::string & folder) const {
    const fs::path   here     = absolute_path(folder);
    const fs::path   top      = top_folder(here);
    bool             relative = !top.empty() && top_folder(absolute_path(base)) == top;
    for (const auto & e : experts) {
        relative = relative && top_folder(absolute_path(e.dir)) == top;
    }
    const auto stored = [&](const std::string & path) {
        return relative ? absolute_path(path).lexically_relative(here).string() : absolute_path(path).string();
    };
    nlohmann::json experts_json = nlohmann::json::array();
    for (const auto & e : experts) {
        experts_json.push_back({ { "name", e.name }, { "path", stored(e.dir) } });
    }
    nlohmann::json j = { { "base", stored(base) },
             { "paths", relative ? "relative" : "absolute" },
             { "experts", experts_json },
             { "gate", gate_kind_name(gate) },
             { "mix", mix_mode_name(mix) },
             { "gate_hidden", hidden },
             { "gate_targets", targets },
             { "train_experts", train_experts } };
    if (gate == GateKind::xlora) {
        j["xlora"] = xlora.to_json();
    }
    if (mix == MixMode::output) {
        j["output"] = output.to_json();
    }
    if (relative) {
        j["written_in"] = here.string();
    }
    return j;
}

GateConfig GateConfig::from_json(const nlohmann::json & j, const std::string & source) {
    GateConfig c;
    try {
        // Files without "paths" name their folders as they were given (relative to the working folder).
        const std::string paths = j.value("paths", "as given");
        if (paths != "relative" && paths != "absolute" && paths != "as given") {
            fail(source, "'paths' is '" + paths + "', not relative or absolute");
        }
        const fs::path here       = absolute_path(source).parent_path();
        const fs::path written_in = fs::path(j.value("written_in", ""));
        const auto     path_of    = [&](const std::string & stored) {
            return paths == "relative" && fs::path(stored).is_relative() ? resolve(stored, here, written_in, source) : stored;
        };
        c.base = path_of(j.at("base").get<std::string>());
        for (const auto & e : j.at("experts")) {
            c.experts.push_back({ e.at("name").get<std::string>(), path_of(e.at("path").get<std::string>()) });
        }
        c.gate    = parse_gate_kind(j.at("gate").get<std::string>());
        c.mix     = parse_mix_mode(j.at("mix").get<std::string>());
        if (const nlohmann::json & hidden = j.at("gate_hidden"); hidden.is_number_float()) {  // an int64 cast could overflow
            fail(source, "'gate_hidden' must be an integer, got " + hidden.dump());
        }
        c.hidden  = j.at("gate_hidden").get<int64_t>();
        c.targets = j.value("gate_targets", std::vector<std::string>{});
        c.train_experts = j.value("train_experts", false);
    } catch (const nlohmann::json::exception & e) {
        fail(source, std::string("not a gate config: ") + json_error_text(e));
    } catch (const Error & e) {
        fail(source, e.what());
    }
    if (c.hidden <= 0) {
        fail(source, "'gate_hidden' must be positive");
    }
    if (c.gate == GateKind::xlora) {
        if (!j.contains("xlora")) {
            fail(source, "gate xlora without its 'xlora' settings");
        }
        c.xlora = XLoraConfig::from_peft_json(j["xlora"], source);
    }
    if (c.mix == MixMode::output) {
        if (!j.contains("output") || !j["output"].is_object()) {
            fail(source, "mix output without its 'output' settings");
        }
        c.output = OutputMixSettings::from_json(j["output"], source);
        if (c.output.top_k > static_cast<int64_t>(c.experts.size())) {
            fail(source, "output.top_k " + std::to_string(c.output.top_k) + " is more than the " +
                             std::to_string(c.experts.size()) + " experts");
        }
    }
    if (c.experts.empty()) {
        fail(source, "lists no experts");
    }
    if (c.experts.size() < 2) {
        fail(source, "lists 1 expert; a gate mixes at least 2");
    }
    return c;
}

void save_gate_dir(const std::string & dir, const GateConfig & config, const NamedTensors & tensors) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        fail(dir, "cannot create directory: " + ec.message());
    }
    write_safetensors((fs::path(dir) / "gate.safetensors").string(), tensors);
    write_json_file((fs::path(dir) / "gate_config.json").string(), config.to_json(dir));
}

GateConfig read_gate_config(const std::string & dir) {
    const std::string path = (fs::path(dir) / "gate_config.json").string();
    return GateConfig::from_json(read_json_file(path), path);
}

}  // namespace cgm
