#include "adapters/lora.h"

#include "core/error.h"
#include "models/dropout.h"
#include "core/numbers.h"
#include "core/random.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"
#include "io/json_file.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>

namespace fs = std::filesystem;

namespace cgm {
namespace {

constexpr const char * kPeftPrefix = "base_model.model.";

// libstdc++'s breadth-first matcher takes time polynomial in the path's length whatever the
// pattern; its default backtracking one takes exponential time on nested repetition (".*+\\.q"
// from a hostile adapter_config.json hangs it). Back-references, which PEFT's keys never use, are
// then refused as invalid.
#ifdef __GLIBCXX__
constexpr std::regex::flag_type kRegexFlags = std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
constexpr std::regex::flag_type kRegexFlags = std::regex::ECMAScript;
#endif

// Each distinct pattern is compiled once per process: lookups run for every module of every adapter
// loaded. Patterns reach here checked (checked_regex), so compiling cannot fail.
const std::regex & compiled(const std::string & pattern) {
    static std::mutex                         lock;
    static std::map<std::string, std::regex> cache;
    const std::lock_guard<std::mutex>         hold(lock);
    auto                                      it = cache.find(pattern);
    if (it == cache.end()) {
        it = cache.emplace(pattern, std::regex(pattern, kRegexFlags)).first;
    }
    return it->second;
}

// PEFT's key regex for rank_pattern / alpha_pattern: re.match(rf"(.*\.)?{key}$", path).
std::string key_regex(const std::string & key) {
    return "(.*\\.)?" + key;
}

// Compiles `pattern`; otherwise an Error naming `source` (the file or flag) and `what` (the pattern
// as the user wrote it).
void checked_regex(const std::string & pattern, const std::string & source, const std::string & what) {
    // Compiling recurses per state: a pattern of this length is no module name but an attack.
    constexpr size_t kMaxPattern = 1000;
    if (pattern.size() > kMaxPattern) {
        fail(source, what.substr(0, 40) + "... is longer than " + std::to_string(kMaxPattern) + " characters");
    }
    try {
        compiled(pattern);
    } catch (const std::regex_error & e) {
        fail(source, what + " is not a valid regular expression: " + e.what());
    }
}

// PEFT's pattern lookup: the first key k with re.match(rf"(.*\.)?{k}$", path).
template <class V> const V * pattern_value(const std::map<std::string, V> & patterns, const std::string & path) {
    for (const auto & [key, value] : patterns) {
        if (std::regex_match(path, compiled(key_regex(key)))) {
            return &value;
        }
    }
    return nullptr;
}

std::map<std::string, Linear *> by_path(const std::vector<NamedLinear> & modules) {
    std::map<std::string, Linear *> out;
    for (const auto & m : modules) {
        out[m.path] = m.linear;
    }
    return out;
}

// "q,k,v,o,wi,wo": the distinct last names of the modules (those `keep` accepts), for messages
// about targets.
std::string module_names(const std::vector<NamedLinear> & modules,
                         const std::function<bool(const std::string &)> & keep = nullptr) {
    std::vector<std::string> names;
    for (const auto & m : modules) {
        if (keep && !keep(m.path)) {
            continue;
        }
        const std::string leaf = m.path.substr(m.path.rfind('.') + 1);
        if (std::find(names.begin(), names.end(), leaf) == names.end()) {
            names.push_back(leaf);
        }
    }
    std::string out;
    for (const auto & n : names) {
        out += (out.empty() ? "" : ",") + n;
    }
    return out;
}

std::string join(const std::vector<std::string> & items, const std::string & quote = "") {
    std::string out;
    for (const auto & item : items) {
        out += (out.empty() ? "" : ", ") + quote + item + quote;
    }
    return out;
}

// A JSON integer; anything else (a float, whose conversion could overflow) is an Error naming
// `source` and `what`.
int64_t whole_number(const nlohmann::json & value, const std::string & source, const std::string & what) {
    const std::optional<int64_t> n = json_exact_int(value);
    if (!n) {
        fail(source, "bad LoRA config: " + what + " must be an integer, not the " + value.type_name() + " " + value.dump());
    }
    return *n;
}

// "KEY=VALUE,KEY=VALUE" -> {KEY: VALUE}, each value read by `read` (nothing: malformed); errors
// name `flag` and say what a value must be (`value_rule`).
template <class V>
std::map<std::string, V> parse_pattern(const std::string & text, const std::string & flag, const std::string & value_rule,
                                       const std::function<std::optional<V>(const std::string &)> & read) {
    std::map<std::string, V> out;
    for (size_t start = 0; !text.empty() && start <= text.size();) {
        const size_t      comma = std::min(text.find(',', start), text.size());
        const std::string item  = text.substr(start, comma - start);
        start                   = comma + 1;
        const size_t eq = item.rfind('=');
        const std::optional<V> value = eq == std::string::npos ? std::nullopt : read(item.substr(eq + 1));
        if (eq == std::string::npos || eq == 0 || !value) {
            fail(flag, "'" + item + "' is not NAME=VALUE with " + value_rule);
        }
        const std::string key = item.substr(0, eq);
        checked_regex(key_regex(key), flag, "'" + key + "'");
        if (!out.emplace(key, *value).second) {
            fail(flag, "'" + key + "' is given twice");
        }
    }
    return out;
}

// Every target name matches a module (a target regex is checked by the layers it gives).
void check_targets(const LoraConfig & config, const std::vector<NamedLinear> & modules) {
    if (!config.target_regex.empty()) {
        return;
    }
    std::vector<std::string> unmatched;
    for (const auto & t : config.targets) {
        const bool found = std::any_of(modules.begin(), modules.end(),
                                       [&](const NamedLinear & m) { return module_matches(m.path, { t }); });
        if (!found) {
            unmatched.push_back(t);
        }
    }
    if (!unmatched.empty()) {
        std::string given;
        for (const auto & t : config.targets) {
            given += (given.empty() ? "" : ",") + t;
        }
        throw Error("--targets " + given + ": " + join(unmatched, "'") + (unmatched.size() == 1 ? " matches" : " match") +
                    " no module of the model (it has " + module_names(modules) + ")");
    }
}

// Every rank/alpha pattern key matches a module the adapter targets: a key that matches nothing
// would leave the rank or alpha it meant to set silently at r / lora_alpha.
template <class V>
void check_pattern_keys(const std::map<std::string, V> & patterns, const std::string & flag, const LoraConfig & config,
                        const std::vector<NamedLinear> & modules) {
    const auto targeted = [&](const std::string & path) { return config.targets_module(path); };
    for (const auto & kv : patterns) {
        const std::map<std::string, V> one = { kv };
        const bool found = std::any_of(modules.begin(), modules.end(), [&](const NamedLinear & m) {
            return targeted(m.path) && pattern_value(one, m.path) != nullptr;
        });
        if (!found) {
            fail(flag, "'" + kv.first + "' matches no module the adapter targets (" + module_names(modules, targeted) + ")");
        }
    }
}

// Every modules_to_save entry must name linear modules of the model (only those can be saved here),
// and none may also carry a LoRA layer.
void check_saved_modules(const LoraConfig & config, const std::vector<NamedLinear> & modules, const std::string & source) {
    for (const auto & name : config.modules_to_save) {
        bool found = false;
        for (const auto & m : modules) {
            if (module_matches(m.path, { name })) {
                found = true;
                if (config.targets_module(m.path)) {
                    fail(source, "module '" + m.path + "' is both a LoRA target and in modules_to_save");
                }
            }
        }
        if (!found) {
            fail(source, "modules_to_save '" + name + "' names no linear module of the base (it has " +
                             module_names(modules) + ")");
        }
    }
}

}  // namespace

void require_adapter_folder(const std::string & dir) {
    const fs::path d(dir);
    if (!fs::is_directory(d) || fs::exists(d / "adapter_config.json")) {
        return;  // a missing folder is named by the read that follows
    }
    if (fs::exists(d / "gate_config.json")) {
        fail(dir, "this folder is a gate (gate_config.json), not a LoRA adapter; pass it as --model");
    }
    if (fs::exists(d / "config.json")) {
        fail(dir, "this folder is a base model (config.json), not a LoRA adapter; pass it as --base or --model, and "
                  "LoRA adapters as --expert");
    }
    if (fs::exists(d / "dataset.json")) {
        fail(dir, "this folder is a dataset (dataset.json from prepare-data), not a LoRA adapter");
    }
}

std::map<std::string, int64_t> parse_rank_pattern(const std::string & text) {
    return parse_pattern<int64_t>(text, "--rank-pattern", "VALUE a positive whole number (a rank)",
                                  [](const std::string & v) -> std::optional<int64_t> {
                                      if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos ||
                                          std::stoll(v) <= 0) {
                                          return std::nullopt;
                                      }
                                      return std::stoll(v);
                                  });
}

std::map<std::string, double> parse_alpha_pattern(const std::string & text) {
    return parse_pattern<double>(text, "--alpha-pattern", "VALUE a positive number (an alpha)",
                                 [](const std::string & v) -> std::optional<double> {
                                     const std::optional<double> alpha = parse_number(v);
                                     return alpha && *alpha > 0 ? alpha : std::nullopt;
                                 });
}

bool module_matches(const std::string & path, const std::vector<std::string> & targets) {
    for (const auto & t : targets) {
        if (path == t || (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0 &&
                          path[path.size() - t.size() - 1] == '.')) {
            return true;
        }
    }
    return false;
}

bool LoraConfig::targets_module(const std::string & path) const {
    return target_regex.empty() ? module_matches(path, targets) : std::regex_match(path, compiled(target_regex));
}

int64_t LoraConfig::rank_for(const std::string & path) const {
    const int64_t * v = pattern_value(rank_pattern, path);
    return v ? *v : r;
}

double LoraConfig::scaling_for(const std::string & path) const {
    const double * a    = pattern_value(alpha_pattern, path);
    const double   alph = a ? *a : alpha;
    const double   rank = static_cast<double>(rank_for(path));
    return use_rslora ? alph / std::sqrt(rank) : alph / rank;
}

LoraConfig LoraConfig::from_peft_json(const nlohmann::json & j, const std::string & source) {
    if (!j.is_object()) {
        fail(source, "not a JSON object");
    }
    LoraConfig c;
    try {
        if (j.value("peft_type", "LORA") != "LORA") {
            fail(source, "peft_type " + j["peft_type"].dump() + " is not LORA");
        }
        const auto refuse_if = [&](bool condition, const std::string & what) {
            if (condition) {
                fail(source, what + " is not supported");
            }
        };
        refuse_if(j.value("use_dora", false), "use_dora (DoRA)");
        refuse_if(j.value("fan_in_fan_out", false), "fan_in_fan_out");
        if (j.contains("bias") && j.at("bias") != "none") {
            const nlohmann::json & bias = j.at("bias");
            refuse_if(true, "bias " + (bias.is_string() ? bias.get<std::string>() : bias.dump()));
        }
        refuse_if(j.contains("layers_to_transform") && !j["layers_to_transform"].is_null(), "layers_to_transform");
        c.r          = whole_number(j.at("r"), source, "'r'");
        c.alpha      = j.at("lora_alpha").get<double>();
        c.dropout    = j.value("lora_dropout", 0.0);
        c.use_rslora = j.value("use_rslora", false);
        c.task_type  = j.contains("task_type") && j["task_type"].is_null() ? "" : j.value("task_type", c.task_type);
        if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
            c.base_model = j["base_model_name_or_path"].get<std::string>();
        }
        const auto & t = j.at("target_modules");
        if (t.is_string()) {
            c.target_regex = t.get<std::string>();
            c.targets.clear();
        } else {
            c.targets = t.get<std::vector<std::string>>();
        }
        if (j.contains("rank_pattern")) {
            for (const auto & [key, rank] : j["rank_pattern"].get<std::map<std::string, nlohmann::json>>()) {
                c.rank_pattern[key] = whole_number(rank, source, "rank_pattern '" + key + "'");
            }
        }
        if (j.contains("alpha_pattern")) {
            c.alpha_pattern = j["alpha_pattern"].get<std::map<std::string, double>>();
        }
        if (j.contains("modules_to_save") && !j["modules_to_save"].is_null()) {
            c.modules_to_save = j["modules_to_save"].get<std::vector<std::string>>();
        }
    } catch (const nlohmann::json::exception & e) {
        fail(source, std::string("bad LoRA config: ") + json_error_text(e));
    }
    if (c.r <= 0) {
        fail(source, "'r' must be positive");
    }
    if (c.dropout < 0.0 || c.dropout >= 1.0) {
        fail(source, "'lora_dropout' must be in [0, 1)");
    }
    if (!c.target_regex.empty()) {
        checked_regex(c.target_regex, source, "target_modules '" + c.target_regex + "'");
    }
    for (const auto & [key, rank] : c.rank_pattern) {
        checked_regex(key_regex(key), source, "rank_pattern key '" + key + "'");
        if (rank <= 0) {
            fail(source, "rank_pattern '" + key + "': the rank must be positive");
        }
    }
    for (const auto & [key, alpha] : c.alpha_pattern) {
        checked_regex(key_regex(key), source, "alpha_pattern key '" + key + "'");
    }
    return c;
}

nlohmann::json LoraConfig::to_peft_json() const {
    return {
        { "alpha_pattern", alpha_pattern },
        { "auto_mapping", nullptr },
        { "base_model_name_or_path", base_model },
        { "bias", "none" },
        { "fan_in_fan_out", false },
        { "inference_mode", true },
        { "init_lora_weights", true },
        { "layer_replication", nullptr },
        { "layers_pattern", nullptr },
        { "layers_to_transform", nullptr },
        { "loftq_config", nlohmann::json::object() },
        { "lora_alpha", alpha },
        { "lora_dropout", dropout },
        { "megatron_config", nullptr },
        { "megatron_core", "megatron.core" },
        { "modules_to_save", modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(modules_to_save) },
        { "peft_type", "LORA" },
        { "r", r },
        { "rank_pattern", rank_pattern },
        { "revision", nullptr },
        { "target_modules", target_regex.empty() ? nlohmann::json(targets) : nlohmann::json(target_regex) },
        { "task_type", task_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(task_type) },
        { "use_dora", false },
        { "use_rslora", use_rslora },
    };
}

LoraLayer::LoraLayer(at::Tensor a, at::Tensor b, double scaling_, double dropout_)
    : A(std::move(a)), B(std::move(b)), scaling(scaling_), dropout(dropout_) {}

at::Tensor LoraLayer::delta(const at::Tensor & x, const AdapterCall & call) const {
    // A and B may stay float32 under a bf16 base: the cast of these small matrices is cheap and
    // keeps the trained weights and their optimizer state in full precision.
    const at::Tensor a  = cast_like(A, x);
    const at::Tensor b  = cast_like(B, x);
    const at::Tensor in = call.training && dropout > 0 ? cgm::dropout(x, dropout) : x;
    return at::linear(at::linear(in, a), b) * scaling;  // [..., r] -> [..., d_out]
}

NamedTensors LoraAdapter::peft_tensors() const {
    NamedTensors out;
    for (const auto & [path, layer] : layers) {
        out.emplace_back(kPeftPrefix + path + ".lora_A.weight", layer->A);
        out.emplace_back(kPeftPrefix + path + ".lora_B.weight", layer->B);
    }
    for (const auto & [path, w] : saved) {
        out.emplace_back(kPeftPrefix + path + ".weight", w->weight);
        if (w->bias.defined()) {
            out.emplace_back(kPeftPrefix + path + ".bias", w->bias);
        }
    }
    return out;
}

std::vector<at::Tensor> LoraAdapter::parameters() const {
    std::vector<at::Tensor> out;
    for (const auto & kv : layers) {
        out.push_back(kv.second->A);
        out.push_back(kv.second->B);
    }
    for (const auto & kv : saved) {
        out.push_back(kv.second->weight);
        if (kv.second->bias.defined()) {
            out.push_back(kv.second->bias);
        }
    }
    return out;
}

double LoraAdapter::flops_per_row(const std::string & path) const {
    for (const auto & [p, layer] : layers) {
        if (p == path) {
            return 2.0 * static_cast<double>(layer->A.size(0) * (layer->A.size(1) + layer->B.size(0)));
        }
    }
    return 0.0;
}

LoraAdapter create_lora(const std::vector<NamedLinear> & modules, const LoraConfig & config, uint64_t seed) {
    check_targets(config, modules);
    check_pattern_keys(config.rank_pattern, "--rank-pattern", config, modules);
    check_pattern_keys(config.alpha_pattern, "--alpha-pattern", config, modules);
    check_saved_modules(config, modules, "--modules-to-save");
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    LoraAdapter   adapter{ config, {}, {} };
    for (const auto & m : modules) {
        if (module_matches(m.path, config.modules_to_save)) {
            const auto copy = [](const at::Tensor & t) { return t.defined() ? t.to(at::kFloat, false, true) : t; };
            adapter.saved.emplace_back(m.path, std::make_shared<LinearWeights>(
                                                   LinearWeights{ copy(m.linear->weight), copy(m.linear->bias) }));
        }
        if (!config.targets_module(m.path)) {
            continue;
        }
        const at::Tensor & w    = m.linear->weight;
        const int64_t      rank = config.rank_for(m.path);
        const at::Tensor a       = uniform_fan_in({ rank, w.size(1) }, w.size(1), gen);  // [r, d_in]
        const auto       options = w.options().dtype(at::kFloat);  // trained in float32 (see LoraLayer::delta)
        adapter.layers.emplace_back(
            m.path, std::make_shared<LoraLayer>(a.to(options), at::zeros({ w.size(0), rank }, options),
                                                config.scaling_for(m.path), config.dropout));
    }
    if (adapter.layers.empty()) {
        std::string names;
        for (const auto & t : config.targets) {
            names += (names.empty() ? "" : ",") + t;
        }
        throw Error("--targets " + (config.target_regex.empty() ? names : config.target_regex) +
                    ": matches no module of the model (it has " + module_names(modules) + ")");
    }
    for (const auto & p : adapter.parameters()) {
        p.requires_grad_(true);
    }
    return adapter;
}

LoraAdapter load_lora(const std::string & dir, const std::vector<NamedLinear> & modules, c10::ScalarType dtype) {
    const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
    const std::string tensor_path = (fs::path(dir) / "adapter_model.safetensors").string();
    require_adapter_folder(dir);
    LoraAdapter       adapter{ LoraConfig::from_peft_json(read_json_file(config_path), config_path), {}, {} };
    check_saved_modules(adapter.config, modules, config_path);
    const SafetensorsReader tensors(tensor_path);
    const auto              module_of = by_path(modules);
    std::map<std::string, std::pair<at::Tensor, at::Tensor>> found;
    std::map<std::string, LinearWeights>                     saved;
    const auto ends_with = [](const std::string & s, const std::string & tail) {
        return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    for (const auto & name : tensors.names()) {
        const std::string suffix_a = ".lora_A.weight", suffix_b = ".lora_B.weight";
        const bool is_a = ends_with(name, suffix_a), is_b = ends_with(name, suffix_b);
        if (name.rfind(kPeftPrefix, 0) != 0) {
            fail(tensor_path, "unexpected tensor '" + name + "' (expected base_model.model.<module>.lora_{A,B}.weight)");
        }
        const std::string rest = name.substr(std::strlen(kPeftPrefix));
        if (is_a || is_b) {
            const std::string path = rest.substr(0, rest.size() - suffix_a.size());
            (is_a ? found[path].first : found[path].second) = tensors.tensor(name);
        } else if ((ends_with(rest, ".weight") || ends_with(rest, ".bias")) &&
                   module_matches(rest.substr(0, rest.rfind('.')), adapter.config.modules_to_save)) {
            const std::string path = rest.substr(0, rest.rfind('.'));
            (ends_with(rest, ".weight") ? saved[path].weight : saved[path].bias) = tensors.tensor(name);
        } else {
            fail(tensor_path, "unexpected tensor '" + name +
                                  "' (expected base_model.model.<module>.lora_{A,B}.weight, or the weight and bias of a "
                                  "module in modules_to_save)");
        }
    }
    for (const auto & m : modules) {
        if (!module_matches(m.path, adapter.config.modules_to_save)) {
            continue;
        }
        const auto it = saved.find(m.path);
        if (it == saved.end() || !it->second.weight.defined() ||
            it->second.weight.sizes() != m.linear->weight.sizes() ||
            it->second.bias.defined() != m.linear->bias.defined() ||
            (it->second.bias.defined() && it->second.bias.sizes() != m.linear->bias.sizes())) {
            fail(tensor_path, "saved module '" + m.path + "' (modules_to_save) is missing or does not fit the base's " +
                                  c10::str(m.linear->weight.sizes()) +
                                  (m.linear->bias.defined() ? " weight and bias" : " weight"));
        }
        const auto to_model = [&](const at::Tensor & t) {
            return t.defined() ? t.to(m.linear->weight.device(), dtype, false, true) : t;
        };
        adapter.saved.emplace_back(
            m.path, std::make_shared<LinearWeights>(LinearWeights{ to_model(it->second.weight), to_model(it->second.bias) }));
    }
    for (const auto & [stored_path, ab] : found) {
        // peft's X-LoRA wraps some models once more and stores "model.<path>".
        const bool        wrapped = stored_path.rfind("model.", 0) == 0 && !module_of.count(stored_path) &&
                                    module_of.count(stored_path.substr(6));
        const std::string path    = wrapped ? stored_path.substr(6) : stored_path;
        const auto        it      = module_of.find(path);
        if (it == module_of.end()) {
            fail(tensor_path, "adapts module '" + path + "', which the base model does not have");
        }
        const auto & [a, b] = ab;
        if (!a.defined() || !b.defined()) {
            fail(tensor_path, "module '" + path + "' has only one of lora_A / lora_B");
        }
        const at::Tensor & w    = it->second->weight;
        const int64_t      rank = adapter.config.rank_for(path);
        if (a.dim() != 2 || b.dim() != 2 || a.size(0) != rank || b.size(1) != rank || a.size(1) != w.size(1) ||
            b.size(0) != w.size(0)) {
            fail(tensor_path, "module '" + path + "': lora_A " + c10::str(a.sizes()) + " / lora_B " + c10::str(b.sizes()) +
                                  " do not fit weight " + c10::str(w.sizes()) + " at rank " + std::to_string(rank));
        }
        adapter.layers.emplace_back(path, std::make_shared<LoraLayer>(a.to(w.device(), dtype, false, true),
                                                                      b.to(w.device(), dtype, false, true),
                                                                      adapter.config.scaling_for(path), adapter.config.dropout));
    }
    if (adapter.layers.empty()) {
        fail(tensor_path, "holds no LoRA tensors");
    }
    return adapter;
}

void save_lora(const LoraAdapter & adapter, const std::string & dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        fail(dir, "cannot create directory: " + ec.message());
    }
    // Tensors first: a folder with a config is taken for a complete adapter.
    write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), adapter.peft_tensors());
    write_json_file((fs::path(dir) / "adapter_config.json").string(), adapter.config.to_peft_json());
}

void attach_lora(const std::vector<NamedLinear> & modules, const LoraAdapter & adapter) {
    const auto module_of = by_path(modules);
    for (const auto & [path, layer] : adapter.layers) {
        module_of.at(path)->adapter = layer;
    }
    for (const auto & [path, weights] : adapter.saved) {
        module_of.at(path)->replacement = weights;
    }
}

void detach_adapters(const std::vector<NamedLinear> & modules) {
    for (const auto & m : modules) {
        m.linear->adapter.reset();
        m.linear->replacement.reset();
    }
}

void merge_lora(const std::vector<NamedLinear> & modules, const LoraAdapter & adapter) {
    const auto module_of = by_path(modules);
    for (const auto & [path, layer] : adapter.layers) {
        Linear * l = module_of.at(path);
        l->weight  = l->weight + at::matmul(layer->B, layer->A).detach() * layer->scaling;  // [d_out, d_in]
        l->adapter.reset();
    }
    for (const auto & [path, weights] : adapter.saved) {
        Linear * l = module_of.at(path);
        l->weight  = weights->weight.detach().to(l->weight.scalar_type(), false, true);
        if (weights->bias.defined()) {
            l->bias = weights->bias.detach().to(l->bias.scalar_type(), false, true);
        }
        l->replacement.reset();
    }
}

}  // namespace cgm
