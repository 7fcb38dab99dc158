// Negative tests of the readers of adapter and gate folders: a PEFT LoRA folder (load_lora),
// gate_config.json (GateConfig), an X-LoRA config (XLoraConfig::from_peft_json), and the flags of
// a mixture (--expert, --fixed-weights). Each bad input must be a cgm::Error whose one-line message
// names the file (or flag) and the problem; the positive controls show the same inputs, made
// right, are accepted, so a refusal is never an accident of the test data.
#include "adapters/adapter_folder.h"
#include "adapters/gate_config.h"
#include "adapters/lora.h"
#include "adapters/lora_mixture.h"
#include "adapters/xlora.h"
#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/t5.h"
#include "support/error_of.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {

namespace fs = std::filesystem;

// d_model 16, 2 heads of 4: q is [8, 16] (d_out != d_in).
T5Model tiny_model() {
    const nlohmann::json config = { { "vocab_size", 40 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 24 },
                                    { "num_layers", 1 },  { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false } };
    return T5Model::random(T5Config::from_json(config, "test"), 5);
}

const std::string kQ = "encoder.block.0.layer.0.SelfAttention.q";
const std::string kV = "encoder.block.0.layer.0.SelfAttention.v";

std::string a_name(const std::string & path) { return "base_model.model." + path + ".lora_A.weight"; }
std::string b_name(const std::string & path) { return "base_model.model." + path + ".lora_B.weight"; }

nlohmann::json lora_config(int64_t r = 2) {
    return { { "peft_type", "LORA" },     { "r", r },          { "lora_alpha", 4 }, { "lora_dropout", 0.0 },
             { "target_modules", { "q", "v" } }, { "bias", "none" }, { "task_type", "SEQ_2_SEQ_LM" } };
}

// Right tensors for kQ and kV at rank r: A [r, d_in], B [d_out, r].
NamedTensors good_tensors(T5Model & model, int64_t r = 2) {
    NamedTensors out;
    for (const auto & m : model.linear_modules()) {
        if (m.path == kQ || m.path == kV) {
            const at::Tensor & w = m.linear->weight;  // [d_out, d_in]
            out.emplace_back(a_name(m.path), at::randn({ r, w.size(1) }));
            out.emplace_back(b_name(m.path), at::randn({ w.size(0), r }));
        }
    }
    return out;
}

void write_folder(const std::string & dir, const nlohmann::json & config, const NamedTensors & tensors) {
    fs::create_directories(dir);
    write_bytes(dir + "/adapter_config.json", config.dump(2));
    write_safetensors(dir + "/adapter_model.safetensors", tensors);
}

// tensors with the one named `name` replaced (or dropped, with an undefined tensor).
NamedTensors with_tensor(NamedTensors tensors, const std::string & name, const at::Tensor & t) {
    NamedTensors out;
    for (auto & [n, v] : tensors) {
        if (n != name) {
            out.emplace_back(n, v);
        } else if (t.defined()) {
            out.emplace_back(n, t);
        }
    }
    return out;
}

// The message starts with "<where>: ", holds every piece of `what`, and is one line.
void require_message(const std::string & message, const std::string & where, const std::vector<std::string> & what) {
    INFO("message: " << message);
    REQUIRE(message.rfind(where + ": ", 0) == 0);
    for (const auto & w : what) {
        INFO("expected to find: " << w);
        REQUIRE(message.find(w) != std::string::npos);
    }
    REQUIRE(message.find('\n') == std::string::npos);
}

// A folder adapter for the tiny model, loading its error message.
struct AdapterCase {
    TempDir     dir;
    T5Model     model = tiny_model();
    std::string config_path() const { return dir.path() + "/adapter_config.json"; }
    std::string tensor_path() const { return dir.path() + "/adapter_model.safetensors"; }
    std::string load_error() {
        return error_of([&] { load_lora(dir.path(), model.linear_modules()); });
    }
};

// A gate_config.json a cgm-train run writes (every key), as JSON.
nlohmann::json gate_json() {
    return { { "base", "/bases/tiny" },
             { "experts", { { { "name", "antonym" }, { "path", "/runs/antonym" } },
                            { { "name", "hypernym" }, { "path", "/runs/hypernym" } } } },
             { "gate", "cgm" },
             { "mix", "example" },
             { "gate_hidden", 4 },
             { "gate_targets", { "q", "v" } },
             { "train_experts", false } };
}

// peft's XLoraConfig fields, every one away from its default.
nlohmann::json xlora_json() {
    return { { "peft_type", "XLORA" },       { "hidden_size", 32 },         { "xlora_depth", 3 },
             { "xlora_size", 17 },           { "xlora_dropout_p", 0.35 },   { "layerwise_scalings", true },
             { "softmax_temperature", 0.5 }, { "top_k_lora", 2 },           { "enable_softmax", true },
             { "enable_softmax_topk", true }, { "scaling_pass_value", 0.25 }, { "global_scaling_weight", 0.75 } };
}

}  // namespace

// ---- PEFT LoRA folders (load_lora) ----

TEST_CASE("load_lora: a right folder loads (the control of the negative tests below)", "[unit][adapter-files]") {
    AdapterCase c;
    write_folder(c.dir.path(), lora_config(), good_tensors(c.model));
    const LoraAdapter adapter = load_lora(c.dir.path(), c.model.linear_modules());
    REQUIRE(adapter.layers.size() == 2);
    REQUIRE(adapter.config.r == 2);
}

TEST_CASE("load_lora: a missing adapter_config.json or adapter_model.safetensors is an error naming that file",
          "[unit][adapter-files]") {
    AdapterCase c;
    write_folder(c.dir.path(), lora_config(), good_tensors(c.model));
    SECTION("no config") {
        fs::remove(c.config_path());
        require_message(c.load_error(), c.config_path(), { "cannot open" });
    }
    SECTION("no tensors") {
        fs::remove(c.tensor_path());
        require_message(c.load_error(), c.tensor_path(), { "cannot open" });
    }
}

TEST_CASE("load_lora: malformed JSON in adapter_config.json is an error naming the file", "[unit][adapter-files]") {
    AdapterCase c;
    write_folder(c.dir.path(), lora_config(), good_tensors(c.model));
    write_bytes(c.config_path(), "{\n  \"r\": 2,\n  \"lora_alpha\": \n}\n");
    require_message(c.load_error(), c.config_path(), { "malformed JSON", "line 4" });
}

TEST_CASE("load_lora: a config without r, lora_alpha or target_modules, or with wrong types, names the file and the key",
          "[unit][adapter-files]") {
    struct Case {
        std::function<void(nlohmann::json &)> edit;
        std::string                           key;
    };
    const std::vector<Case> cases = {
        { [](nlohmann::json & j) { j.erase("r"); }, "'r'" },
        { [](nlohmann::json & j) { j.erase("lora_alpha"); }, "'lora_alpha'" },
        { [](nlohmann::json & j) { j.erase("target_modules"); }, "'target_modules'" },
        { [](nlohmann::json & j) { j["r"] = "8"; }, "string" },
        { [](nlohmann::json & j) { j["target_modules"] = 3; }, "number" },
        { [](nlohmann::json & j) { j["rank_pattern"] = { { "q", "big" } }; }, "string" },
    };
    for (const auto & k : cases) {
        AdapterCase    c;
        nlohmann::json config = lora_config();
        k.edit(config);
        INFO(config.dump());
        write_folder(c.dir.path(), config, good_tensors(c.model));
        require_message(c.load_error(), c.config_path(), { "bad LoRA config", k.key });
    }
    AdapterCase    c;
    nlohmann::json config = lora_config();
    config["peft_type"]   = "IA3";
    write_folder(c.dir.path(), config, good_tensors(c.model));
    require_message(c.load_error(), c.config_path(), { "peft_type", "IA3", "not LORA" });
}

TEST_CASE("load_lora: r <= 0 is refused naming the file and 'r'", "[unit][adapter-files]") {
    const int64_t r = GENERATE(0, -2);
    AdapterCase   c;
    write_folder(c.dir.path(), lora_config(r), good_tensors(c.model));
    require_message(c.load_error(), c.config_path(), { "'r' must be positive" });
}

TEST_CASE("load_lora: lora_dropout outside [0, 1) is refused naming the file; 0 and 0.99 load", "[unit][adapter-files]") {
    const double bad = GENERATE(1.0, -0.1, 1.5);
    AdapterCase  c;
    nlohmann::json config  = lora_config();
    config["lora_dropout"] = bad;
    write_folder(c.dir.path(), config, good_tensors(c.model));
    require_message(c.load_error(), c.config_path(), { "'lora_dropout' must be in [0, 1)" });

    for (const double ok : { 0.0, 0.99 }) {
        config["lora_dropout"] = ok;
        write_folder(c.dir.path(), config, good_tensors(c.model));
        REQUIRE(load_lora(c.dir.path(), c.model.linear_modules()).config.dropout == Approx(ok));
    }
}

TEST_CASE("load_lora: a module with only lora_A or only lora_B is refused naming the file and the module",
          "[unit][adapter-files]") {
    AdapterCase       c;
    const std::string missing = GENERATE(a_name(kV), b_name(kV));
    INFO("without " << missing);
    write_folder(c.dir.path(), lora_config(), with_tensor(good_tensors(c.model), missing, at::Tensor()));
    require_message(c.load_error(), c.tensor_path(), { "'" + kV + "'", "only one of lora_A / lora_B" });
}

TEST_CASE("load_lora: A or B of the wrong shape (rank other than r, d_in or d_out off) is refused naming the module",
          "[unit][adapter-files]") {
    // q: weight [8, 16], r 2: A must be [2, 16], B [8, 2].
    struct Case {
        std::string          tensor;
        std::vector<int64_t> shape;
        std::string          why;
    };
    const std::vector<Case> cases = {
        { a_name(kQ), { 3, 16 }, "A at rank 3" },     { b_name(kQ), { 8, 3 }, "B at rank 3" },
        { a_name(kQ), { 2, 8 }, "A's d_in is d_out" }, { a_name(kQ), { 2, 17 }, "A's d_in off by one" },
        { b_name(kQ), { 16, 2 }, "B's d_out is d_in" }, { b_name(kQ), { 9, 2 }, "B's d_out off by one" },
        { a_name(kQ), { 2, 16, 1 }, "A of 3 dims" },  { b_name(kQ), { 16 }, "B of 1 dim" },
        { a_name(kQ), { 16, 2 }, "A transposed" },
    };
    AdapterCase c;
    for (const auto & k : cases) {
        INFO(k.why);
        write_folder(c.dir.path(), lora_config(2), with_tensor(good_tensors(c.model), k.tensor, at::randn(k.shape)));
        require_message(c.load_error(), c.tensor_path(), { "'" + kQ + "'", "do not fit weight [8, 16] at rank 2" });
    }
    // Both A and B at rank 3 against r 2 (consistent with each other, not with the config).
    write_folder(c.dir.path(), lora_config(2), good_tensors(c.model, 3));
    require_message(c.load_error(), c.tensor_path(), { "do not fit weight", "at rank 2" });
}

TEST_CASE("load_lora: tensors for a module the base model lacks are refused naming the file and the module",
          "[unit][adapter-files]") {
    AdapterCase  c;
    NamedTensors tensors = good_tensors(c.model);
    // The tiny model has one block: block 1 does not exist; "SelfAttention.x" is no projection.
    const std::string absent = GENERATE(std::string("encoder.block.1.layer.0.SelfAttention.q"),
                                        std::string("encoder.block.0.layer.0.SelfAttention.x"));
    tensors.emplace_back(a_name(absent), at::randn({ 2, 16 }));
    tensors.emplace_back(b_name(absent), at::randn({ 8, 2 }));
    write_folder(c.dir.path(), lora_config(), tensors);
    require_message(c.load_error(), c.tensor_path(), { "'" + absent + "'", "base model does not have" });
}

TEST_CASE("load_lora: a tensor not named base_model.model.<module>.lora_{A,B}.weight is refused naming it",
          "[unit][adapter-files]") {
    const std::string name = GENERATE(std::string("base_model.model.encoder.block.0.layer.0.SelfAttention.q.weight"),
                                      std::string("encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"),
                                      std::string("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_C.weight"),
                                      std::string("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_embedding_A"));
    AdapterCase  c;
    NamedTensors tensors = good_tensors(c.model);
    tensors.emplace_back(name, at::randn({ 2, 16 }));
    write_folder(c.dir.path(), lora_config(), tensors);
    require_message(c.load_error(), c.tensor_path(), { "unexpected tensor '" + name + "'" });
}

TEST_CASE("load_lora: a safetensors file with no tensors, or of 0 bytes, is refused naming the file",
          "[unit][adapter-files]") {
    AdapterCase c;
    write_folder(c.dir.path(), lora_config(), {});
    require_message(c.load_error(), c.tensor_path(), { "holds no LoRA tensors" });
    write_bytes(c.tensor_path(), "");
    require_message(c.load_error(), c.tensor_path(), { "truncated" });
}

// ---- gate_config.json (GateConfig) ----

TEST_CASE("gate_config.json: missing keys or wrong types are errors naming the file and the key", "[unit][adapter-files]") {
    struct Case {
        std::function<void(nlohmann::json &)> edit;
        std::vector<std::string>              what;
    };
    const std::vector<Case> cases = {
        { [](nlohmann::json & j) { j.erase("base"); }, { "not a gate config", "'base'" } },
        { [](nlohmann::json & j) { j.erase("experts"); }, { "not a gate config", "'experts'" } },
        { [](nlohmann::json & j) { j.erase("gate"); }, { "not a gate config", "'gate'" } },
        { [](nlohmann::json & j) { j.erase("mix"); }, { "not a gate config", "'mix'" } },
        { [](nlohmann::json & j) { j.erase("gate_hidden"); }, { "not a gate config", "'gate_hidden'" } },
        { [](nlohmann::json & j) { j["experts"][1].erase("path"); }, { "not a gate config", "'path'" } },
        { [](nlohmann::json & j) { j["experts"][0].erase("name"); }, { "not a gate config", "'name'" } },
        { [](nlohmann::json & j) { j["base"] = 3; }, { "not a gate config", "number" } },
        { [](nlohmann::json & j) { j["gate_hidden"] = "4"; }, { "not a gate config", "string" } },
        { [](nlohmann::json & j) { j["gate"] = true; }, { "not a gate config", "boolean" } },
        { [](nlohmann::json & j) { j["gate_targets"] = "q"; }, { "not a gate config", "string" } },
        { [](nlohmann::json & j) { j["train_experts"] = "yes"; }, { "not a gate config", "string" } },
        { [](nlohmann::json & j) { j["experts"] = { "a=/x" }; }, { "not a gate config" } },
    };
    for (const auto & k : cases) {
        nlohmann::json j = gate_json();
        k.edit(j);
        INFO(j.dump());
        require_message(error_of([&] { GateConfig::from_json(j, "runs/cgm/gate_config.json"); }),
                        "runs/cgm/gate_config.json", k.what);
    }
    // read_gate_config names the file it read.
    TempDir dir;
    write_bytes(dir.file("gate_config.json"), "{\"base\": ");
    require_message(error_of([&] { read_gate_config(dir.path()); }), dir.file("gate_config.json"), { "malformed JSON" });
    nlohmann::json j = gate_json();
    j.erase("experts");
    write_bytes(dir.file("gate_config.json"), j.dump());
    require_message(error_of([&] { read_gate_config(dir.path()); }), dir.file("gate_config.json"), { "'experts'" });
}

TEST_CASE("gate_config.json: an unknown gate kind or mix mode, xlora without settings, no experts, gate_hidden <= 0: "
          "errors naming the file",
          "[unit][adapter-files]") {
    const std::string source = "runs/cgm/gate_config.json";
    nlohmann::json    j      = gate_json();
    j["gate"]                = "moe";
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "gate 'moe' is not supported" });
    j       = gate_json();
    j["mix"] = "token";
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "unknown mix mode 'token'" });
    j         = gate_json();
    j["gate"] = "xlora";
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "gate xlora without its 'xlora' settings" });
    j                     = gate_json();
    j["gate"]             = "xlora";
    j["xlora"]            = xlora_json();
    j["xlora"]["xlora_depth"] = 0;
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "xlora_depth" });
    j            = gate_json();
    j["experts"] = nlohmann::json::array();
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "lists no experts" });
    // gate_hidden <= 0 names the file (it used to pass here and fail later naming --gate-hidden,
    // a flag evaluate does not have).
    for (const int hidden : { 0, -3 }) {
        j                = gate_json();
        j["gate_hidden"] = hidden;
        require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "'gate_hidden' must be positive" });
    }

    // The controls: both gate kinds and both mix modes are accepted.
    j        = gate_json();
    j["mix"] = "seed";
    REQUIRE(GateConfig::from_json(j, source).mix == MixMode::seed);
    REQUIRE(GateConfig::from_json(gate_json(), source).mix == MixMode::example);
    j          = gate_json();
    j["gate"]  = "xlora";
    j["xlora"] = xlora_json();
    REQUIRE((GateConfig::from_json(j, source).gate == GateKind::xlora));
    // gate_targets and train_experts may be absent: no targets, experts frozen.
    j = gate_json();
    j.erase("gate_targets");
    j.erase("train_experts");
    const GateConfig minimal = GateConfig::from_json(j, source);
    REQUIRE(minimal.targets.empty());
    REQUIRE_FALSE(minimal.train_experts);
}

TEST_CASE("GateConfig: to_json -> from_json (and save_gate_dir -> read_gate_config) keeps every field", "[unit][adapter-files]") {
    GateConfig cgm;
    cgm.base          = "/bases/flan-t5-small";
    cgm.experts       = { { "antonym", "/runs/a" }, { "hypernym", "/runs/h" }, { "definition", "/runs/d" } };
    cgm.gate          = GateKind::cgm;
    cgm.mix           = MixMode::seed;
    cgm.hidden        = 7;
    cgm.targets       = { "q", "wo" };
    cgm.train_experts = true;

    GateConfig xl;
    xl.base                     = "/bases/tiny";
    xl.experts                  = { { "e0", "/x/e0" }, { "e1", "/x/e1" } };
    xl.gate                     = GateKind::xlora;
    xl.mix                      = MixMode::example;
    xl.hidden                   = 3;
    xl.targets                  = {};
    xl.train_experts            = false;
    xl.xlora.hidden_size        = 32;
    xl.xlora.depth              = 3;
    xl.xlora.size               = 17;
    xl.xlora.dropout            = 0.35;
    xl.xlora.layerwise          = true;
    xl.xlora.temperature        = 0.5;
    xl.xlora.top_k              = 2;
    xl.xlora.softmax_topk       = true;
    xl.xlora.scaling_pass_value = 0.25;
    xl.xlora.global_scaling     = 0.75;

    const auto require_same = [](const GateConfig & a, const GateConfig & b) {
        REQUIRE(a.base == b.base);
        REQUIRE(a.experts.size() == b.experts.size());
        for (size_t i = 0; i < a.experts.size(); ++i) {
            REQUIRE(a.experts[i].name == b.experts[i].name);
            REQUIRE(a.experts[i].dir == b.experts[i].dir);
        }
        REQUIRE((a.gate == b.gate));
        REQUIRE(a.mix == b.mix);
        REQUIRE(a.hidden == b.hidden);
        REQUIRE(a.targets == b.targets);
        REQUIRE(a.train_experts == b.train_experts);
        if (a.gate == GateKind::xlora) {
            REQUIRE(a.xlora.hidden_size == b.xlora.hidden_size);
            REQUIRE(a.xlora.depth == b.xlora.depth);
            REQUIRE(a.xlora.size == b.xlora.size);
            REQUIRE(a.xlora.dropout == b.xlora.dropout);
            REQUIRE(a.xlora.layerwise == b.xlora.layerwise);
            REQUIRE(a.xlora.temperature == b.xlora.temperature);
            REQUIRE(a.xlora.top_k == b.xlora.top_k);
            REQUIRE(a.xlora.softmax_topk == b.xlora.softmax_topk);
            REQUIRE(a.xlora.scaling_pass_value == b.xlora.scaling_pass_value);
            REQUIRE(a.xlora.global_scaling == b.xlora.global_scaling);
        }
    };
    for (const GateConfig * original : { &cgm, &xl }) {
        INFO("gate " << gate_kind_name(original->gate));
        require_same(*original, GateConfig::from_json(original->to_json("/runs/gate"), "/runs/gate/gate_config.json"));
        TempDir dir;
        save_gate_dir(dir.path(), *original, { { "g", at::ones({ 2 }) } });
        require_same(*original, read_gate_config(dir.path()));
        REQUIRE(fs::exists(dir.file("gate.safetensors")));
    }
    // The file uses the documented keys and values (read by hand, not by from_json). The base is
    // in another tree than the gate folder (/bases, /runs): every path is absolute.
    const nlohmann::json j = cgm.to_json("/runs/gate");
    REQUIRE(j.at("mix") == "seed");
    REQUIRE(j.at("gate_hidden") == 7);
    REQUIRE(j.at("paths") == "absolute");
    REQUIRE(j.at("experts")[1] == nlohmann::json{ { "name", "hypernym" }, { "path", "/runs/h" } });
    REQUIRE_FALSE(j.contains("xlora"));
    REQUIRE_FALSE(j.contains("written_in"));
    REQUIRE(xl.to_json("/x/gate").at("xlora").at("softmax_temperature") == 0.5);
    // All in one tree: relative to the gate folder, and where that folder was.
    GateConfig in_tree = xl;
    in_tree.base       = "/x/base";
    const nlohmann::json rel = in_tree.to_json("/x/runs/gate");
    REQUIRE(rel.at("paths") == "relative");
    REQUIRE(rel.at("written_in") == "/x/runs/gate");
    REQUIRE(rel.at("experts")[0] == nlohmann::json{ { "name", "e0" }, { "path", "../../e0" } });
}

TEST_CASE("GateConfig: an experiment tree moved or copied whole keeps working (paths relative to the gate folder); a "
          "gate folder moved alone finds the base and experts where it was written",
          "[unit][adapter-files]") {
    TempDir           tmp;
    const std::string tree = tmp.file("exp");
    for (const char * sub : { "base", "experts/a", "experts/b", "runs/gate" }) {
        fs::create_directories(tree + "/" + sub);
    }
    GateConfig config;
    config.base    = tree + "/base";
    config.experts = { { "a", tree + "/experts/a" }, { "b", tree + "/experts/b" } };
    save_gate_dir(tree + "/runs/gate", config, { { "g", at::ones({ 2 }) } });
    const nlohmann::json written = read_json_file(tree + "/runs/gate/gate_config.json");
    REQUIRE(written.at("paths") == "relative");
    REQUIRE(written.at("base") == "../../base");

    fs::rename(tree, tmp.file("moved"));
    const GateConfig moved = read_gate_config(tmp.file("moved/runs/gate"));
    REQUIRE(moved.base == tmp.file("moved/base"));
    REQUIRE(moved.experts[1].dir == tmp.file("moved/experts/b"));

    // The gate folder alone, elsewhere, beside the tree that stayed where it was written.
    fs::rename(tmp.file("moved"), tree);
    fs::create_directories(tmp.file("elsewhere"));
    fs::copy(tree + "/runs/gate", tmp.file("elsewhere/gate"));
    const GateConfig alone = read_gate_config(tmp.file("elsewhere/gate"));
    REQUIRE(alone.base == tree + "/base");
    REQUIRE(alone.experts[0].dir == tree + "/experts/a");
    // A file without "paths" (written before they were stored relative) names them as given.
    nlohmann::json legacy = written;
    legacy.erase("paths");
    legacy.erase("written_in");
    legacy["base"] = "runs/base";
    REQUIRE(GateConfig::from_json(legacy, tmp.file("elsewhere/gate/gate_config.json")).base == "runs/base");
}

// ---- X-LoRA config (XLoraConfig::from_peft_json) ----

TEST_CASE("XLoraConfig::from_peft_json: reads every peft field; top_k_lora null is all experts", "[unit][adapter-files]") {
    const XLoraConfig c = XLoraConfig::from_peft_json(xlora_json(), "xlora/adapter_config.json");
    REQUIRE(c.hidden_size == 32);
    REQUIRE(c.depth == 3);
    REQUIRE(c.size == 17);
    REQUIRE(c.dropout == 0.35);
    REQUIRE(c.layerwise);
    REQUIRE(c.temperature == 0.5);
    REQUIRE(c.top_k == 2);
    REQUIRE(c.softmax_topk);
    REQUIRE(c.scaling_pass_value == 0.25);
    REQUIRE(c.global_scaling == 0.75);
    nlohmann::json j  = { { "hidden_size", 8 }, { "top_k_lora", nullptr } };
    const XLoraConfig d = XLoraConfig::from_peft_json(j, "x");
    REQUIRE(d.hidden_size == 8);
    REQUIRE(d.top_k == 0);
    // peft's defaults for the absent fields
    REQUIRE(d.depth == 1);
    REQUIRE(d.size == 2048);
    REQUIRE(d.dropout == 0.2);
    REQUIRE_FALSE(d.layerwise);
    REQUIRE(d.temperature == 1.0);
    REQUIRE_FALSE(d.softmax_topk);
    REQUIRE(d.scaling_pass_value == 0.0);
    REQUIRE(d.global_scaling == 1.0);
}

TEST_CASE("XLoraConfig::from_peft_json: no hidden_size, depth or size < 1, temperature <= 0, enable_softmax false, "
          "wrong types: errors naming the file",
          "[unit][adapter-files]") {
    struct Case {
        std::function<void(nlohmann::json &)> edit;
        std::vector<std::string>              what;
    };
    const std::vector<Case> cases = {
        { [](nlohmann::json & j) { j.erase("hidden_size"); }, { "not an X-LoRA config", "'hidden_size'" } },
        { [](nlohmann::json & j) { j["xlora_depth"] = 0; }, { "xlora_depth", "must be positive" } },
        { [](nlohmann::json & j) { j["xlora_depth"] = -1; }, { "xlora_depth", "must be positive" } },
        { [](nlohmann::json & j) { j["xlora_size"] = 0; }, { "xlora_size", "must be positive" } },
        { [](nlohmann::json & j) { j["softmax_temperature"] = 0.0; }, { "softmax_temperature", "must be positive" } },
        { [](nlohmann::json & j) { j["softmax_temperature"] = -0.5; }, { "softmax_temperature", "must be positive" } },
        { [](nlohmann::json & j) { j["enable_softmax"] = false; }, { "enable_softmax false is not supported" } },
        { [](nlohmann::json & j) { j["hidden_size"] = "32"; }, { "not an X-LoRA config", "string" } },
        { [](nlohmann::json & j) { j["xlora_depth"] = "2"; }, { "not an X-LoRA config", "string" } },
        { [](nlohmann::json & j) { j["layerwise_scalings"] = "yes"; }, { "not an X-LoRA config", "string" } },
        { [](nlohmann::json & j) { j["top_k_lora"] = "2"; }, { "not an X-LoRA config", "string" } },
        { [](nlohmann::json & j) { j["softmax_temperature"] = "hot"; }, { "not an X-LoRA config", "string" } },
    };
    for (const auto & k : cases) {
        nlohmann::json j = xlora_json();
        k.edit(j);
        INFO(j.dump());
        require_message(error_of([&] { XLoraConfig::from_peft_json(j, "xlora/adapter_config.json"); }),
                        "xlora/adapter_config.json", k.what);
    }
}

// ---- mixture flags (LoraMixture) ----

TEST_CASE("LoraMixture: two experts with one name are refused naming --expert and the name; attach_fixed with the "
          "wrong number of weights names --fixed-weights",
          "[unit][adapter-files]") {
    TempDir dir;
    T5Model model = tiny_model();
    for (const std::string name : { "e0", "e1" }) {
        write_folder(dir.file(name), lora_config(), good_tensors(model));
    }
    const std::string message = error_of([&] {
        LoraMixture m(model.linear_modules(), { { "same", dir.file("e0") }, { "same", dir.file("e1") } }, at::kFloat);
    });
    require_message(message, "--expert", { "'same'" });

    LoraMixture mixture(model.linear_modules(), { { "e0", dir.file("e0") }, { "e1", dir.file("e1") } }, at::kFloat);
    REQUIRE(mixture.num_experts() == 2);
    for (const std::vector<double> & weights : { std::vector<double>{ 1.0 }, std::vector<double>{ 0.2, 0.3, 0.5 } }) {
        require_message(error_of([&] { mixture.attach_fixed(weights); }), "--fixed-weights",
                        { std::to_string(weights.size()) + " weights for 2 experts" });
    }
    // The right number attaches a static mixture to each adapted module (and only to those).
    mixture.attach_fixed({ 0.5, 0.5 });
    for (const auto & m : model.linear_modules()) {
        INFO(m.path);
        REQUIRE((m.linear->adapter != nullptr) == (m.path == kQ || m.path == kV));
    }
}

TEST_CASE("gate_config.json with one expert names the file: a gate mixes at least 2", "[unit][adapter-files]") {
    const std::string source = "runs/cgm/gate_config.json";
    nlohmann::json    j      = gate_json();
    j["experts"].erase(1);
    require_message(error_of([&] { GateConfig::from_json(j, source); }), source, { "lists 1 expert; a gate mixes at least 2" });
}

TEST_CASE("a static mixture: --experts-only with --fixed-weights, or a weight < 0 or not finite, is an error naming "
          "the flag; weights need not sum to 1",
          "[unit][adapter-files]") {
    T5Model    model = tiny_model();
    Adapters   none;  // a base checkpoint: no experts
    const auto error = [&](const StaticMixture & mix) {
        return error_of([&] { apply_static_mixture(model, none, mix, c10::kFloat); });
    };
    require_message(error({ {}, "a", { 0.5, 0.5 }, false }), "--experts-only", { "--fixed-weights", "give one of them" });
    require_message(error({ {}, "", { 2.0, -1.0 }, false }), "--fixed-weights",
                    { "weight -1 (expert 2) must be finite and >= 0" });
    require_message(error({ {}, "", { std::nan(""), 1.0 }, false }), "--fixed-weights", { "(expert 1)" });
    require_message(error({ {}, "", { 1.0, INFINITY }, false }), "--fixed-weights", { "(expert 2)" });
    // Weights that do not sum to 1 pass: what fails next is the missing experts.
    require_message(error({ {}, "", { 2.0, 0.0 }, false }), "--fixed-weights", { "needs a gate folder or --expert" });
}

TEST_CASE("attach_gate: fewer than 2 experts, or an expert whose adapter_config.json names another base folder, is "
          "an error naming --expert",
          "[unit][adapter-files]") {
    T5Model     model = tiny_model();
    TempDir     dir;
    const auto  expert_on = [&](const std::string & name, const std::string & base) {
        fs::create_directories(dir.file(name));
        write_bytes(dir.file(name) + "/adapter_config.json", nlohmann::json{ { "base_model_name_or_path", base } }.dump());
        return ExpertSpec{ name, dir.file(name) };
    };
    fs::create_directories(dir.file("base"));
    fs::create_directories(dir.file("other"));
    GateConfig config;
    config.base    = dir.file("base");
    config.experts = { expert_on("a", dir.file("base")) };
    require_message(error_of([&] { attach_gate(model, config, c10::kFloat, 0); }), "--expert",
                    { "a gate mixes at least 2 experts, got 1" });

    config.experts.push_back(expert_on("b", dir.file("other")));
    require_message(error_of([&] { attach_gate(model, config, c10::kFloat, 0); }), "--expert b",
                    { dir.file("b") + " was trained on base " + fs::weakly_canonical(dir.file("other")).string(),
                      "not on --base " + fs::weakly_canonical(dir.file("base")).string() });

    // The same base, named relative to the expert's folder: the check passes and loading goes on
    // (to the tensors these folders lack).
    config.experts.back() = expert_on("b", "../base");
    require_message(error_of([&] { attach_gate(model, config, c10::kFloat, 0); }),
                    dir.file("a") + "/adapter_config.json", {});
}
