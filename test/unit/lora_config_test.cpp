// LoRA configuration semantics (PEFT's adapter_config.json): rsLoRA's alpha/sqrt(r) against
// alpha/r, per-module ranks and alphas from rank_pattern / alpha_pattern (in create_lora,
// load_lora and a save/load round trip), and the PEFT features this project refuses.
//
// Every expected value is written here by hand (a table of ranks and alphas per module) and every
// module output is recomputed with plain ATen from the tensors the test itself wrote.
#include "adapters/lora.h"
#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/t5.h"
#include "support/error_of.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kModelSeed = 11;

// A tiny random T5 with d_model 16 and 2 heads of 4 (inner 8), so q/k/v are [8, 16] and o is
// [16, 8]: d_in and d_out differ and a transposed tensor cannot pass for a right one.
T5Model tiny_model() {
    const nlohmann::json config = { { "vocab_size", 40 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 24 },
                                    { "num_layers", 2 },  { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false } };
    return T5Model::random(T5Config::from_json(config, "test"), kModelSeed);
}

bool ends_with(const std::string & s, const std::string & tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// adapter_config.json as peft 0.13 writes it for T5 (every field it writes), plus `extra`.
nlohmann::json peft_config(int64_t r, double alpha, const std::vector<std::string> & targets,
                           const nlohmann::json & extra = nlohmann::json::object()) {
    nlohmann::json j = { { "alpha_pattern", nlohmann::json::object() },
                         { "auto_mapping", nullptr },
                         { "base_model_name_or_path", "tiny-t5" },
                         { "bias", "none" },
                         { "fan_in_fan_out", false },
                         { "inference_mode", true },
                         { "init_lora_weights", true },
                         { "layer_replication", nullptr },
                         { "layers_pattern", nullptr },
                         { "layers_to_transform", nullptr },
                         { "loftq_config", nlohmann::json::object() },
                         { "lora_alpha", alpha },
                         { "lora_dropout", 0.05 },
                         { "megatron_config", nullptr },
                         { "megatron_core", "megatron.core" },
                         { "modules_to_save", nullptr },
                         { "peft_type", "LORA" },
                         { "r", r },
                         { "rank_pattern", nlohmann::json::object() },
                         { "revision", nullptr },
                         { "target_modules", targets },
                         { "task_type", "SEQ_2_SEQ_LM" },
                         { "use_dora", false },
                         { "use_rslora", false } };
    j.update(extra);
    return j;
}

// One module's LoRA weights as the test writes them: A [r, d_in], B [d_out, r].
struct LoraPair {
    at::Tensor a;
    at::Tensor b;
};
using Pairs = std::map<std::string, LoraPair>;

// Random A and B (B non-zero, unlike a fresh adapter) for every module `rank_of` gives a rank > 0.
Pairs random_pairs(T5Model & model, const std::function<int64_t(const std::string &)> & rank_of, uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    Pairs         out;
    for (const auto & m : model.linear_modules()) {
        const int64_t r = rank_of(m.path);
        if (r > 0) {
            const at::Tensor & w = m.linear->weight;  // [d_out, d_in]
            out[m.path]          = { at::randn({ r, w.size(1) }, gen), at::randn({ w.size(0), r }, gen) };
        }
    }
    return out;
}

// An adapter folder in PEFT's layout: adapter_config.json + adapter_model.safetensors.
void write_adapter(const std::string & dir, const nlohmann::json & config, const Pairs & pairs) {
    fs::create_directories(dir);
    write_bytes(dir + "/adapter_config.json", config.dump(2));
    NamedTensors tensors;
    for (const auto & [path, p] : pairs) {
        tensors.emplace_back("base_model.model." + path + ".lora_A.weight", p.a);
        tensors.emplace_back("base_model.model." + path + ".lora_B.weight", p.b);
    }
    write_safetensors(dir + "/adapter_model.safetensors", tensors);
}

// Every module of `model` (adapter attached) against plain ATen: W x + s B A x where `pairs`
// has the module (s from `scaling_of`), exactly W x elsewhere.
void require_module_outputs(T5Model & model, const Pairs & pairs,
                            const std::function<double(const std::string &)> & scaling_of) {
    c10::NoGradGuard no_grad;
    at::Generator    gen = at::make_generator<at::CPUGeneratorImpl>(99);
    for (const auto & m : model.linear_modules()) {
        const at::Tensor & w = m.linear->weight;
        const at::Tensor   x = at::randn({ 2, 3, w.size(1) }, gen);  // x: [B, T, d_in]
        const at::Tensor   y = m.linear->forward(x, AdapterCall{});  // [B, T, d_out]
        at::Tensor         expected = at::matmul(x, w.t());          // [B, T, d_out]
        const auto         it       = pairs.find(m.path);
        INFO("module " << m.path);
        if (it == pairs.end()) {
            REQUIRE(m.linear->adapter == nullptr);
            REQUIRE(at::equal(y, expected));
            continue;
        }
        const at::Tensor ax = at::matmul(x, it->second.a.t());                 // [B, T, r]
        expected            = expected + scaling_of(m.path) * at::matmul(ax, it->second.b.t());
        REQUIRE(at::allclose(y, expected, 1e-5, 1e-5));
    }
}

// The per-module ranks and alphas of the pattern tests, written out by hand for targets q,k,v,o
// with r 2 and lora_alpha 8 (T5 paths: <stack>.block.<i>.layer.<j>.<SelfAttention|EncDecAttention>.<q|k|v|o>).
// The keys are chosen so that peft 0.13 (one key for both maps, ".*\.key$" else the exact path)
// and later peft (each map on its own, "(.*\.)?key$") agree on every module.
struct RankAlpha {
    int64_t r;
    double  alpha;
};
const nlohmann::json kRankPattern  = { { "SelfAttention.v", 3 },
                                       { "block.1.layer.0.SelfAttention.q", 1 },
                                       { "decoder.block.0.layer.0.SelfAttention.q", 4 },
                                       { "o", 6 },
                                       { "v", 5 } };
const nlohmann::json kAlphaPattern = { { "SelfAttention.v", 6.0 },
                                       { "block.1.layer.0.SelfAttention.q", 5.0 },
                                       { "decoder.block.0.layer.0.SelfAttention.q", 12.0 },
                                       { "k", 4.0 },
                                       { "v", 15.0 } };

RankAlpha expected_rank_alpha(const std::string & path) {
    if (path == "decoder.block.0.layer.0.SelfAttention.q") {
        return { 4, 12.0 };  // the full path: this module only (not encoder.block.0's q)
    }
    if (path == "encoder.block.1.layer.0.SelfAttention.q" || path == "decoder.block.1.layer.0.SelfAttention.q") {
        return { 1, 5.0 };
    }
    if (ends_with(path, ".SelfAttention.v")) {
        return { 3, 6.0 };  // "SelfAttention.v" comes before "v" in the map: the first match wins
    }
    if (ends_with(path, ".EncDecAttention.v")) {
        return { 5, 15.0 };
    }
    if (ends_with(path, ".o")) {
        return { 6, 8.0 };  // rank pattern only: lora_alpha
    }
    if (ends_with(path, ".k")) {
        return { 2, 4.0 };  // alpha pattern only: r
    }
    return { 2, 8.0 };  // the other q (encoder.block.0, cross-attention)
}

bool is_qkvo(const std::string & path) {
    return ends_with(path, ".q") || ends_with(path, ".k") || ends_with(path, ".v") || ends_with(path, ".o");
}

// Hand-written scaling of the pattern table: alpha/r, or alpha/sqrt(r) with rsLoRA.
double expected_pattern_scaling(const std::string & path, bool rslora) {
    const RankAlpha ra = expected_rank_alpha(path);
    return rslora ? ra.alpha / std::sqrt(static_cast<double>(ra.r)) : ra.alpha / static_cast<double>(ra.r);
}

nlohmann::json pattern_config(bool rslora) {
    return peft_config(2, 8.0, { "q", "k", "v", "o" },
                       { { "rank_pattern", kRankPattern }, { "alpha_pattern", kAlphaPattern }, { "use_rslora", rslora } });
}

}  // namespace

TEST_CASE("rsLoRA: a loaded adapter adds (alpha/sqrt(r)) B A x to each target, without use_rslora (alpha/r) B A x",
          "[unit][lora-config]") {
    // r 4, alpha 6: rsLoRA scales by 6/2 = 3, plain LoRA by 6/4 = 1.5.
    const bool   rslora   = GENERATE(true, false);
    const double expected = rslora ? 3.0 : 1.5;
    INFO("use_rslora " << rslora);
    TempDir     dir;
    T5Model     model = tiny_model();
    const Pairs pairs =
        random_pairs(model, [](const std::string & p) { return ends_with(p, ".q") || ends_with(p, ".v") ? 4 : 0; }, 5);
    write_adapter(dir.path(), peft_config(4, 6.0, { "q", "v" }, { { "use_rslora", rslora } }), pairs);

    const LoraAdapter adapter = load_lora(dir.path(), model.linear_modules());
    REQUIRE(adapter.config.use_rslora == rslora);
    REQUIRE(adapter.layers.size() == pairs.size());
    for (const auto & [path, layer] : adapter.layers) {
        INFO("module " << path);
        REQUIRE(adapter.config.scaling_for(path) == Approx(expected).epsilon(1e-12));
        REQUIRE(layer->scaling == Approx(expected).epsilon(1e-12));
        REQUIRE(layer->dropout == Approx(0.05));
    }
    attach_lora(model.linear_modules(), adapter);
    require_module_outputs(model, pairs, [&](const std::string &) { return expected; });

    // The whole model: the adapter attached equals a copy whose weights were merged here by hand
    // (W + s B A), so the adapter sits on exactly the modules it names.
    T5Model merged = tiny_model();
    for (const auto & m : merged.linear_modules()) {
        const auto it = pairs.find(m.path);
        if (it != pairs.end()) {
            m.linear->weight = m.linear->weight + expected * at::matmul(it->second.b, it->second.a);  // [d_out, d_in]
        }
    }
    c10::NoGradGuard no_grad;
    const at::Tensor ids  = at::tensor({ 5, 9, 3, 17, 1, 8, 30, 2 }, at::kLong).view({ 2, 4 });  // [B, S]
    const at::Tensor mask = at::ones({ 2, 4 }, at::kLong);
    const at::Tensor dec  = at::tensor({ 0, 4, 7, 0, 12, 6 }, at::kLong).view({ 2, 3 });  // [B, T]
    const at::Tensor with_adapter = model.forward(ids, mask, dec).logits;                // [B, T, V]
    const at::Tensor by_hand      = merged.forward(ids, mask, dec).logits;
    REQUIRE(at::allclose(with_adapter, by_hand, 1e-4, 1e-5));
    // ... and the adapter is not a no-op: the base model alone gives other logits.
    detach_adapters(model.linear_modules());
    REQUIRE_FALSE(at::allclose(model.forward(ids, mask, dec).logits, by_hand, 1e-3, 1e-3));
}

TEST_CASE("scaling_for: alpha/sqrt(r) with use_rslora, alpha/r without, from adapter_config.json", "[unit][lora-config]") {
    // r 9, alpha 12: 12/3 = 4 with rsLoRA, 12/9 without.
    const LoraConfig rs = LoraConfig::from_peft_json(peft_config(9, 12.0, { "q" }, { { "use_rslora", true } }), "rs.json");
    const LoraConfig plain = LoraConfig::from_peft_json(peft_config(9, 12.0, { "q" }), "plain.json");
    REQUIRE(rs.use_rslora);
    REQUIRE_FALSE(plain.use_rslora);
    REQUIRE(rs.scaling_for("encoder.block.0.layer.0.SelfAttention.q") == Approx(4.0).epsilon(1e-12));
    REQUIRE(plain.scaling_for("encoder.block.0.layer.0.SelfAttention.q") == Approx(12.0 / 9.0).epsilon(1e-12));
    // A missing use_rslora is PEFT's default, false.
    nlohmann::json no_flag = peft_config(9, 12.0, { "q" });
    no_flag.erase("use_rslora");
    REQUIRE(LoraConfig::from_peft_json(no_flag, "x.json").scaling_for("q") == Approx(12.0 / 9.0).epsilon(1e-12));
}

TEST_CASE("rank_pattern / alpha_pattern: create_lora gives each module its own rank (A [r, d_in], B [d_out, r]) and alpha/r",
          "[unit][lora-config]") {
    T5Model    model  = tiny_model();
    const bool rslora = GENERATE(false, true);
    INFO("use_rslora " << rslora);
    const LoraConfig  config  = LoraConfig::from_peft_json(pattern_config(rslora), "adapter_config.json");
    const LoraAdapter adapter = create_lora(model.linear_modules(), config, 3);

    std::set<std::string> expected_paths, adapted;
    std::map<std::string, Linear *> module_of;
    for (const auto & m : model.linear_modules()) {
        module_of[m.path] = m.linear;
        if (is_qkvo(m.path)) {
            expected_paths.insert(m.path);  // q,k,v,o but never the feed-forward's wo
        }
    }
    for (const auto & [path, layer] : adapter.layers) {
        INFO("module " << path);
        adapted.insert(path);
        const RankAlpha    ra = expected_rank_alpha(path);
        const at::Tensor & w  = module_of.at(path)->weight;  // [d_out, d_in]
        REQUIRE(layer->A.sizes().vec() == std::vector<int64_t>{ ra.r, w.size(1) });
        REQUIRE(layer->B.sizes().vec() == std::vector<int64_t>{ w.size(0), ra.r });
        REQUIRE(at::count_nonzero(layer->B).item<int64_t>() == 0);  // a fresh adapter starts at W
        REQUIRE(layer->scaling == Approx(expected_pattern_scaling(path, rslora)).epsilon(1e-12));
        REQUIRE(config.rank_for(path) == ra.r);
    }
    REQUIRE(adapted == expected_paths);
}

TEST_CASE("rank_pattern / alpha_pattern: load_lora checks each module's rank and scales its delta by its own alpha/r",
          "[unit][lora-config]") {
    const bool rslora = GENERATE(false, true);
    INFO("use_rslora " << rslora);
    TempDir     dir;
    T5Model     model = tiny_model();
    const Pairs pairs =
        random_pairs(model, [](const std::string & p) { return is_qkvo(p) ? expected_rank_alpha(p).r : 0; }, 21);
    write_adapter(dir.path(), pattern_config(rslora), pairs);

    const LoraAdapter adapter = load_lora(dir.path(), model.linear_modules());
    REQUIRE(adapter.layers.size() == pairs.size());
    for (const auto & [path, layer] : adapter.layers) {
        INFO("module " << path);
        REQUIRE(pairs.count(path) == 1);
        REQUIRE(layer->scaling == Approx(expected_pattern_scaling(path, rslora)).epsilon(1e-12));
        REQUIRE(adapter.config.scaling_for(path) == Approx(expected_pattern_scaling(path, rslora)).epsilon(1e-12));
    }
    attach_lora(model.linear_modules(), adapter);
    require_module_outputs(model, pairs, [&](const std::string & p) { return expected_pattern_scaling(p, rslora); });
}

TEST_CASE("rank_pattern: a full-path key applies to that module only; a file with the default rank there is refused",
          "[unit][lora-config]") {
    TempDir dir;
    T5Model model = tiny_model();
    // Every q at rank 2 (r), but the config says rank 4 for decoder.block.0's self-attention q.
    const Pairs pairs = random_pairs(model, [](const std::string & p) { return ends_with(p, ".q") ? 2 : 0; }, 4);
    write_adapter(dir.path(), peft_config(2, 8.0, { "q" },
                                          { { "rank_pattern", { { "decoder.block.0.layer.0.SelfAttention.q", 4 } } } }),
                  pairs);
    const std::string message = error_of([&] { load_lora(dir.path(), model.linear_modules()); });
    INFO(message);
    REQUIRE(message.rfind(dir.path() + "/adapter_model.safetensors: ", 0) == 0);
    REQUIRE(message.find("'decoder.block.0.layer.0.SelfAttention.q'") != std::string::npos);
    REQUIRE(message.find("at rank 4") != std::string::npos);

    // The same key leaves encoder.block.0's q (same suffix "block.0.layer.0.SelfAttention.q") at r.
    const LoraConfig config = LoraConfig::from_peft_json(read_json_file(dir.path() + "/adapter_config.json"), "c");
    REQUIRE(config.rank_for("decoder.block.0.layer.0.SelfAttention.q") == 4);
    REQUIRE(config.rank_for("encoder.block.0.layer.0.SelfAttention.q") == 2);
    REQUIRE(config.rank_for("decoder.block.1.layer.0.SelfAttention.q") == 2);
    REQUIRE(config.rank_for("decoder.block.0.layer.1.EncDecAttention.q") == 2);
}

TEST_CASE("save_lora -> load_lora keeps rank_pattern, alpha_pattern, use_rslora, every module's scaling and weights",
          "[unit][lora-config]") {
    const bool rslora = GENERATE(false, true);
    INFO("use_rslora " << rslora);
    TempDir     dir;
    T5Model     model = tiny_model();
    const Pairs pairs =
        random_pairs(model, [](const std::string & p) { return is_qkvo(p) ? expected_rank_alpha(p).r : 0; }, 8);
    write_adapter(dir.file("first"), pattern_config(rslora), pairs);
    save_lora(load_lora(dir.file("first"), model.linear_modules()), dir.file("second"));

    // The written config as peft reads it.
    const nlohmann::json written = read_json_file(dir.file("second") + "/adapter_config.json");
    REQUIRE(written.at("rank_pattern") == kRankPattern);
    REQUIRE(written.at("alpha_pattern") == kAlphaPattern);
    REQUIRE(written.at("use_rslora") == rslora);
    REQUIRE(written.at("r") == 2);
    REQUIRE(written.at("lora_alpha") == 8.0);
    REQUIRE(written.at("peft_type") == "LORA");

    const LoraAdapter again = load_lora(dir.file("second"), model.linear_modules());
    REQUIRE(again.layers.size() == pairs.size());
    for (const auto & [path, layer] : again.layers) {
        INFO("module " << path);
        REQUIRE(layer->scaling == Approx(expected_pattern_scaling(path, rslora)).epsilon(1e-12));
        REQUIRE(at::equal(layer->A, pairs.at(path).a));
        REQUIRE(at::equal(layer->B, pairs.at(path).b));
    }
    attach_lora(model.linear_modules(), again);
    require_module_outputs(model, pairs, [&](const std::string & p) { return expected_pattern_scaling(p, rslora); });
}

TEST_CASE("unsupported PEFT features (DoRA, bias, fan_in_fan_out, layers_to_transform) are refused "
          "with one line naming the file and the feature",
          "[unit][lora-config]") {
    struct Case {
        nlohmann::json extra;
        std::string    feature;  // what the message must name
    };
    const std::vector<Case> cases = {
        { { { "use_dora", true } }, "use_dora" },
        { { { "bias", "all" } }, "bias all" },
        { { { "bias", "lora_only" } }, "bias lora_only" },
        { { { "fan_in_fan_out", true } }, "fan_in_fan_out" },
        { { { "layers_to_transform", { 0 } } }, "layers_to_transform" },
        { { { "layers_to_transform", 1 } }, "layers_to_transform" },
    };
    T5Model     model = tiny_model();
    const Pairs pairs = random_pairs(model, [](const std::string & p) { return ends_with(p, ".q") ? 2 : 0; }, 6);
    for (const auto & c : cases) {
        INFO(c.extra.dump());
        TempDir dir;
        write_adapter(dir.path(), peft_config(2, 4.0, { "q" }, c.extra), pairs);
        const std::string message = error_of([&] { load_lora(dir.path(), model.linear_modules()); });
        INFO(message);
        REQUIRE(message.rfind(dir.path() + "/adapter_config.json: ", 0) == 0);
        REQUIRE(message.find(c.feature) != std::string::npos);
        REQUIRE(message.find("not supported") != std::string::npos);
        REQUIRE(message.find('\n') == std::string::npos);
    }
    // PEFT's neutral values of the same fields load (peft_config already writes null / false /
    // "none"; an empty modules_to_save list is neutral too).
    TempDir dir;
    write_adapter(dir.path(), peft_config(2, 4.0, { "q" }, { { "modules_to_save", nlohmann::json::array() } }), pairs);
    REQUIRE(load_lora(dir.path(), model.linear_modules()).layers.size() == pairs.size());
}

TEST_CASE("--rank-pattern / --alpha-pattern text: NAME=VALUE pairs with a regex NAME; malformed text is an error "
          "naming the flag",
          "[unit][lora-config]") {
    REQUIRE(parse_rank_pattern("").empty());
    REQUIRE(parse_rank_pattern("v=4,decoder.*q=3") == std::map<std::string, int64_t>{ { "v", 4 }, { "decoder.*q", 3 } });
    REQUIRE(parse_alpha_pattern("v=8,k=0.5") == std::map<std::string, double>{ { "v", 8.0 }, { "k", 0.5 } });
    const auto require_refused = [](const std::function<void()> & parse, const std::string & flag, const std::string & what) {
        const std::string message = error_of(parse);
        INFO(message);
        REQUIRE(message.rfind(flag + ": ", 0) == 0);
        REQUIRE(message.find(what) != std::string::npos);
    };
    for (const std::string text : { "v=x", "v=0", "v=-2", "v=2.5", "v=", "=3", "v", "v=4,", "v=4,,q=2" }) {
        INFO(text);
        require_refused([&] { parse_rank_pattern(text); }, "--rank-pattern", "is not NAME=VALUE");
    }
    for (const std::string text : { "v=-1", "v=0", "v=inf", "v=nan", "v=8x" }) {
        INFO(text);
        require_refused([&] { parse_alpha_pattern(text); }, "--alpha-pattern", "is not NAME=VALUE");
    }
    require_refused([] { parse_rank_pattern("q[=2"); }, "--rank-pattern", "'q[' is not a valid regular expression");
    require_refused([] { parse_alpha_pattern("v=1,v=2"); }, "--alpha-pattern", "'v' is given twice");
}

TEST_CASE("create_lora: a target name, or a rank/alpha pattern key, that matches no module is an error naming the "
          "flag and the name (PEFT: target modules not found)",
          "[unit][lora-config]") {
    T5Model    model = tiny_model();
    LoraConfig config;
    config.targets = { "Q", "v" };
    std::string message = error_of([&] { create_lora(model.linear_modules(), config, 1); });
    REQUIRE(message.rfind("--targets Q,v: 'Q' matches no module of the model (it has q,k,v,o,", 0) == 0);
    config.targets = { "q", "v" };
    REQUIRE(create_lora(model.linear_modules(), config, 1).layers.size() == 12);  // q, v of 2 encoder + 2x2 decoder attentions

    config.rank_pattern = { { "wo", 4 } };  // a module of the model, but not a target
    message             = error_of([&] { create_lora(model.linear_modules(), config, 1); });
    REQUIRE(message == "--rank-pattern: 'wo' matches no module the adapter targets (q,v)");
    config.rank_pattern  = { { "v", 4 } };
    config.alpha_pattern = { { "SelfAttention.k", 2.0 } };
    message              = error_of([&] { create_lora(model.linear_modules(), config, 1); });
    REQUIRE(message == "--alpha-pattern: 'SelfAttention.k' matches no module the adapter targets (q,v)");
    config.alpha_pattern = { { "decoder.*EncDecAttention.q", 2.0 } };
    REQUIRE(create_lora(model.linear_modules(), config, 1).layers.size() == 12);
}

TEST_CASE("adapter_config.json: a rank <= 0, or a target_modules regex or pattern key that does not compile, is one "
          "error naming the file and the pattern",
          "[unit][lora-config]") {
    const std::vector<std::pair<nlohmann::json, std::string>> cases = {
        { { { "rank_pattern", { { "v", 0 } } } }, "rank_pattern 'v': the rank must be positive" },
        { { { "rank_pattern", { { "q[", 2 } } } }, "rank_pattern key 'q[' is not a valid regular expression" },
        { { { "alpha_pattern", { { "(v", 2.0 } } } }, "alpha_pattern key '(v' is not a valid regular expression" },
        { { { "target_modules", ".*(q|v" } }, "target_modules '.*(q|v' is not a valid regular expression" },
    };
    for (const auto & [patterns, expected] : cases) {
        INFO(patterns.dump());
        const std::string message =
            error_of([&] { LoraConfig::from_peft_json(peft_config(2, 4.0, { "q", "v" }, patterns), "runs/a/adapter_config.json"); });
        REQUIRE(message.rfind("runs/a/adapter_config.json: " + expected, 0) == 0);
        REQUIRE(message.find('\n') == std::string::npos);
    }
    // A valid string target_modules is a full-match regex over module paths, as PEFT's.
    const LoraConfig c = LoraConfig::from_peft_json(peft_config(2, 4.0, {}, { { "target_modules", ".*decoder.*\\.(q|v)" } }), "x");
    T5Model model = tiny_model();
    REQUIRE(create_lora(model.linear_modules(), c, 1).layers.size() == 8);  // q, v of 2 decoder blocks x 2 attentions
}
