// X-LoRA with non-default settings against a plain re-implementation of peft's algorithm written
// here: every LoRA module of a second, identical model gets a reference adapter that computes
// sum_e s_e B_e A_e (x * a_e) expert by expert in float64 (the scaling pass: a_e =
// scaling_pass_value; then the scalings this file derives from the classifier, with its own top-k),
// and the routing (classifier, temperature, layerwise) is recomputed from the classifier tensors.
// Also: X-LoRA decoding with the KV cache equals the full pass, and generate() agrees with both.
#include "adapters/adapter_folder.h"
#include "adapters/xlora.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "support/error_of.h"
#include "support/fixtures.h"
#include "support/reference_expert.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {


// An expert as a folder (for LoraMixture) and its weights per module (for the reference).
struct Expert {
    ExpertSpec                           spec;
    std::map<std::string, ExpertWeights> layers;
};

// What the reference adapters read: the scaling pass flag, or the scalings of the real pass.
struct ReferenceRouting {
    bool       scaling_pass = false;
    double     pass_value   = 0.0;
    at::Tensor scalings;  // [B, S, L, E] float64
    at::Tensor mask;      // [B, S] the encoder's real tokens
};

// Per token, the k largest of E weights kept, the rest zero; with softmax_topk, the kept ones
// replaced by their softmax. k = 0 keeps all (and no softmax, as the library). a: [..., E] float64
at::Tensor keep_top_k(const at::Tensor & a, int64_t k, bool softmax_topk) {
    const int64_t e = a.size(-1);
    if (k <= 0 || k >= e) {
        return a;
    }
    const at::Tensor flat = a.reshape({ -1, e }).contiguous();  // [N, E]
    at::Tensor       out  = at::zeros_like(flat);
    auto             in   = flat.accessor<double, 2>();
    auto             o    = out.accessor<double, 2>();
    for (int64_t n = 0; n < flat.size(0); ++n) {
        std::vector<int64_t> order(static_cast<size_t>(e));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return in[n][i] > in[n][j]; });
        double total = 0;
        for (int64_t i = 0; i < k; ++i) {
            total += std::exp(in[n][order[static_cast<size_t>(i)]]);
        }
        for (int64_t i = 0; i < k; ++i) {
            const int64_t idx = order[static_cast<size_t>(i)];
            o[n][idx]         = softmax_topk ? std::exp(in[n][idx]) / total : in[n][idx];
        }
    }
    return out.view(a.sizes());
}

// peft's X-LoRA layer, expert by expert, in float64.
class ReferenceLayer : public LinearAdapter {
  public:
    ReferenceLayer(std::vector<std::pair<int64_t, ExpertWeights>> experts, int64_t layer, bool per_token,
                   XLoraConfig config, std::shared_ptr<ReferenceRouting> routing)
        : experts_(std::move(experts)), layer_(layer), per_token_(per_token), config_(std::move(config)),
          routing_(std::move(routing)) {}

    at::Tensor delta(const at::Tensor & x, const AdapterCall &) const override {
        const at::Tensor xd = x.detach().to(at::kDouble);  // [B, T, d_in]
        at::Tensor       a;                                // [B, T|1, E]
        double           g = 1.0;
        if (!routing_->scaling_pass) {
            a = routing_->scalings.select(2, layer_);  // [B, S, E]
            if (!per_token_) {
                // Decoder modules: the mean over the encoder's real tokens.
                const at::Tensor m = routing_->mask.to(at::kDouble).unsqueeze(-1);  // [B, S, 1]
                a                  = ((a * m).sum(1) / m.sum(1)).unsqueeze(1);       // [B, 1, E]
            }
            a = keep_top_k(a, config_.top_k, config_.softmax_topk);
            g = config_.global_scaling;
        }
        at::Tensor y = at::zeros({ x.size(0), x.size(1), experts_.front().second.B.size(0) }, at::kDouble);
        for (const auto & [e, w] : experts_) {
            const at::Tensor x_mod = routing_->scaling_pass ? xd * routing_->pass_value
                                                            : xd * a.select(-1, e).unsqueeze(-1);
            y = y + reference_expert(x_mod, w) * g;
        }
        return y.to(x.scalar_type());
    }

  private:
    std::vector<std::pair<int64_t, ExpertWeights>> experts_;
    int64_t                                        layer_;
    bool                                           per_token_;
    XLoraConfig                                    config_;
    std::shared_ptr<ReferenceRouting>              routing_;
};

// Modules whose input is the encoder's token sequence take each token's scalings (README).
bool per_token_module(const std::string & path) {
    const auto ends_with = [&](const std::string & s) {
        return path.size() >= s.size() && path.substr(path.size() - s.size()) == s;
    };
    return path.rfind("encoder.", 0) == 0 || ends_with(".EncDecAttention.k") || ends_with(".EncDecAttention.v");
}

// The model under test with X-LoRA, and an identical model carrying the reference layers.
struct Harness {
    T5Model                           model;
    T5Model                           reference;
    XLoraConfig                       config;
    LoraMixture                       mixture;
    std::shared_ptr<XLoraGate>        gate;
    std::shared_ptr<ReferenceRouting> routing = std::make_shared<ReferenceRouting>();
    std::vector<std::string>          layers;  // modules with an expert, in model order
    int64_t                           n_experts;

    Harness(T5Model m, T5Model ref, const std::vector<Expert> & experts, XLoraConfig c, uint64_t seed)
        : model(std::move(m)), reference(std::move(ref)), config(std::move(c)),
          mixture(model.linear_modules(), specs(experts), at::kFloat), n_experts(static_cast<int64_t>(experts.size())) {
        gate = XLoraGate::attach(model, mixture, config, seed);
        for (const auto & mod : reference.linear_modules()) {
            std::vector<std::pair<int64_t, ExpertWeights>> here;
            for (size_t e = 0; e < experts.size(); ++e) {
                const auto it = experts[e].layers.find(mod.path);
                if (it != experts[e].layers.end()) {
                    here.emplace_back(static_cast<int64_t>(e), it->second);
                }
            }
            if (!here.empty()) {
                mod.linear->adapter = std::make_shared<ReferenceLayer>(
                    here, static_cast<int64_t>(layers.size()), per_token_module(mod.path), config, routing);
                layers.push_back(mod.path);
            }
        }
    }

    static std::vector<ExpertSpec> specs(const std::vector<Expert> & experts) {
        std::vector<ExpertSpec> out;
        for (const auto & e : experts) {
            out.push_back(e.spec);
        }
        return out;
    }

    // The classifier's Linear layers in Sequential order, from the gate's tensors (peft names).
    std::vector<std::pair<at::Tensor, at::Tensor>> classifier() const {
        std::map<int64_t, std::pair<at::Tensor, at::Tensor>> by_index;
        const std::string prefix = "base_model.internal_xlora_classifier.layers.";
        for (const auto & [name, t] : gate->parameters()) {
            REQUIRE(name.rfind(prefix, 0) == 0);
            const std::string rest  = name.substr(prefix.size());
            const int64_t     index = std::stoll(rest.substr(0, rest.find('.')));
            (rest.substr(rest.find('.') + 1) == "weight" ? by_index[index].first : by_index[index].second) = t;
        }
        std::vector<std::pair<at::Tensor, at::Tensor>> out;
        for (const auto & [index, wb] : by_index) {
            out.push_back(wb);
        }
        return out;
    }

    // peft's routing, recomputed: the scaling pass on the reference model, the classifier on its
    // last hidden state, softmax(z / T), one set per layer (layerwise) or shared. Leaves the
    // reference ready for its real pass. ids, mask: [B, S] -> [B, S, L, E] float64
    at::Tensor route(const at::Tensor & ids, const at::Tensor & mask) {
        routing->scaling_pass = true;
        routing->pass_value   = config.scaling_pass_value;
        at::Tensor z          = reference.encode(ids, mask).to(at::kDouble);  // [B, S, d]
        routing->scaling_pass = false;
        const auto layers_wb  = classifier();
        for (size_t i = 0; i < layers_wb.size(); ++i) {
            z = at::matmul(z, layers_wb[i].first.detach().to(at::kDouble).t()) + layers_wb[i].second.detach().to(at::kDouble);
            if (i + 1 < layers_wb.size()) {
                z = at::relu(z);
            }
        }
        const int64_t b = ids.size(0), s = ids.size(1), l = static_cast<int64_t>(layers.size());
        z = config.layerwise ? z.view({ b, s, l, n_experts }) : z.unsqueeze(2).expand({ b, s, l, n_experts });
        routing->scalings = at::softmax(z / config.temperature, -1);
        routing->mask     = mask;
        return routing->scalings;
    }
};

nlohmann::json tiny_config() {
    return { { "vocab_size", 48 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 24 },
             { "num_layers", 2 },  { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
             { "tie_word_embeddings", false } };
}

T5Model tiny_model() { return T5Model::random(T5Config::from_json(tiny_config(), "test"), 21); }

// Three experts of different ranks and alphas on different modules, with random non-zero B.
std::vector<Expert> random_experts(const TempDir & dir) {
    struct Spec {
        int64_t                  r;
        double                   alpha;
        std::vector<std::string> targets;
    };
    const std::vector<Spec> specs = { { 2, 4.0, { "q", "v" } }, { 3, 3.0, { "q", "k", "wo" } }, { 1, 2.0, { "v", "wi_1" } } };
    T5Model                 model = tiny_model();
    std::vector<Expert>     out;
    for (size_t e = 0; e < specs.size(); ++e) {
        LoraConfig config;
        config.r       = specs[e].r;
        config.alpha   = specs[e].alpha;
        config.targets = specs[e].targets;
        LoraAdapter   adapter = create_lora(model.linear_modules(), config, 40 + e);
        at::Generator gen     = at::make_generator<at::CPUGeneratorImpl>(50 + e);
        Expert        expert;
        for (auto & [path, layer] : adapter.layers) {
            c10::NoGradGuard no_grad;
            layer->B.copy_(at::randn(layer->B.sizes(), gen) * 0.5);
            expert.layers[path] = { layer->A.clone(), layer->B.clone(), specs[e].alpha / static_cast<double>(specs[e].r) };
        }
        expert.spec = { "x" + std::to_string(e), dir.file("x" + std::to_string(e)) };
        save_lora(adapter, expert.spec.dir);
        out.push_back(std::move(expert));
    }
    return out;
}

struct Setting {
    const char * what;
    bool         layerwise;
    double       temperature;
    int64_t      top_k;
    bool         softmax_topk;
    double       global_scaling;
    double       scaling_pass_value;
    int64_t      depth;
    double       dropout;
};

XLoraConfig config_of(const Setting & s, int64_t hidden) {
    XLoraConfig c;
    c.hidden_size        = hidden;
    c.layerwise          = s.layerwise;
    c.temperature        = s.temperature;
    c.top_k              = s.top_k;
    c.softmax_topk       = s.softmax_topk;
    c.global_scaling     = s.global_scaling;
    c.scaling_pass_value = s.scaling_pass_value;
    c.depth              = s.depth;
    c.size               = 8;
    c.dropout            = s.dropout;
    return c;
}

// Padded inputs: row 1 ends in padding.
std::pair<at::Tensor, at::Tensor> inputs(int64_t vocab, int64_t len, uint64_t seed) {
    at::Generator gen  = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor    ids  = at::randint(3, vocab, { 2, len }, gen);
    at::Tensor    mask = at::ones({ 2, len }, at::kLong);
    mask[1].slice(0, len - 2).fill_(0);
    ids.masked_fill_(mask == 0, 0);
    return { ids, mask };
}

}  // namespace

TEST_CASE("X-LoRA with non-default settings matches a plain re-implementation: scalings, encoder and decoder output",
          "[unit][xlora-unit]") {
    const std::vector<Setting> settings = {
        { "depth 2, layerwise, no dropout layer", true, 1.0, 0, false, 1.0, 0.0, 2, 0.0 },
        { "temperature 0.5, one set for every layer", false, 0.5, 0, false, 1.0, 0.0, 1, 0.2 },
        { "top_k 1 without softmax, global weight 0.7", true, 1.0, 1, false, 0.7, 0.0, 1, 0.2 },
        { "top_k 2 with softmax, temperature 0.5, scaling pass 1.0, depth 2", true, 0.5, 2, true, 1.0, 1.0, 2, 0.2 },
        { "top_k 2 without softmax, not layerwise, global 0.7, scaling pass 1.0", false, 1.0, 2, false, 0.7, 1.0, 1, 0.2 },
        { "top_k 1 with softmax, temperature 2, global 0.7, scaling pass 0.5, depth 2", false, 2.0, 1, true, 0.7, 0.5, 2, 0.2 },
    };
    TempDir                   dir;
    const std::vector<Expert> experts = random_experts(dir);
    c10::NoGradGuard          no_grad;
    for (const Setting & s : settings) {
        INFO(s.what);
        Harness h(tiny_model(), tiny_model(), experts, config_of(s, 16), 5);
        const int64_t l = static_cast<int64_t>(h.layers.size());
        REQUIRE(h.gate->modules() == h.layers);
        REQUIRE(h.gate->num_layers() == l);

        // peft's Sequential indices: Linear [, ReLU [, Dropout]] ..., Linear.
        std::vector<std::string> names;
        for (const auto & [name, t] : h.gate->parameters()) {
            names.push_back(name);
        }
        const std::string        p    = "base_model.internal_xlora_classifier.layers.";
        const std::string        last = s.depth == 1 ? "0" : (s.dropout > 0 ? "3" : "2");
        std::vector<std::string> expected_names = { p + "0.weight", p + "0.bias" };
        if (s.depth == 2) {
            expected_names.insert(expected_names.end(), { p + last + ".weight", p + last + ".bias" });
        }
        std::sort(names.begin(), names.end());
        std::sort(expected_names.begin(), expected_names.end());
        REQUIRE(names == expected_names);
        const auto classifier = h.classifier();
        REQUIRE(classifier.back().first.size(0) == (s.layerwise ? l * 3 : 3));

        const auto [ids, mask] = inputs(h.model.config().vocab_size, 7, 3);
        const at::Tensor enc   = h.model.encode(ids, mask);
        const at::Tensor want  = h.route(ids, mask);  // [B, S, L, E]
        REQUIRE(h.gate->routing().scalings.sizes() == want.sizes());
        REQUIRE(at::allclose(h.gate->routing().scalings.to(at::kDouble), want, 1e-5, 1e-6));

        const at::Tensor ref_enc = h.reference.encode(ids, mask);
        REQUIRE(at::allclose(enc, ref_enc, 1e-4, 1e-5));
        at::Generator    gen = at::make_generator<at::CPUGeneratorImpl>(9);
        const at::Tensor dec = at::randint(3, h.model.config().vocab_size, { 2, 4 }, gen);
        REQUIRE(at::allclose(h.model.decode(dec, enc, mask), h.reference.decode(dec, ref_enc, mask), 1e-4, 1e-5));
    }
}

TEST_CASE("X-LoRA on the xlora fixtures' T5 base with non-default settings matches the re-implementation",
          "[unit][xlora-unit]") {
    c10::NoGradGuard no_grad;
    for (const Fixture & f : fixtures_or_skip("xlora", "X-LoRA non-default settings on a fixture base")) {
        INFO(f.name);
        const std::string   base = f.path(f.manifest["base_model_dir"].get<std::string>());
        T5Model             probe = T5Model::load(base);
        std::vector<Expert> experts;
        for (const auto & [name, d] : f.manifest["expert_dirs"].items()) {
            Expert e;
            e.spec = { name, f.path(d.get<std::string>()) };
            for (const auto & [path, layer] : load_lora(e.spec.dir, probe.linear_modules()).layers) {
                e.layers[path] = { layer->A, layer->B, layer->scaling };
            }
            experts.push_back(std::move(e));
        }
        // The fixture's classifier shape (depth, size, layerwise) and weights; other settings changed.
        const std::string xlora_dir = f.path(f.manifest["xlora_dir"].get<std::string>());
        XLoraConfig config = XLoraConfig::from_peft_json(read_json_file(xlora_dir + "/adapter_config.json"), xlora_dir);
        const auto  n      = static_cast<int64_t>(experts.size());
        config.temperature        = 0.5;
        config.top_k              = std::max<int64_t>(1, n - 1);
        config.softmax_topk       = true;
        config.global_scaling     = 0.7;
        config.scaling_pass_value = 1.0;
        Harness h(T5Model::load(base), T5Model::load(base), experts, config, 0);
        load_into(SafetensorsReader(xlora_dir + "/adapter_model.safetensors"), h.gate->parameters());

        const at::Tensor ids = f.get("input_ids"), mask = f.get("attention_mask");
        const at::Tensor enc  = h.model.encode(ids, mask);
        const at::Tensor want = h.route(ids, mask);
        REQUIRE(at::allclose(h.gate->routing().scalings.to(at::kDouble), want, 1e-4, 1e-5));
        REQUIRE(at::allclose(enc, h.reference.encode(ids, mask), 1e-4, 1e-4));
    }
}

TEST_CASE("X-LoRA decoding with the KV cache equals the full decoder pass, and generate() agrees", "[unit][xlora-unit]") {
    TempDir                   dir;
    const std::vector<Expert> experts = random_experts(dir);
    const Setting s{ "top_k 2 with softmax", true, 0.5, 2, true, 0.7, 1.0, 2, 0.0 };
    Harness       h(tiny_model(), tiny_model(), experts, config_of(s, 16), 5);
    T5Model &     model = h.model;
    c10::NoGradGuard no_grad;

    const auto [ids, mask] = inputs(model.config().vocab_size, 6, 4);
    at::Generator    gen   = at::make_generator<at::CPUGeneratorImpl>(2);
    const at::Tensor dec   = at::randint(3, model.config().vocab_size, { 2, 5 }, gen);
    const at::Tensor enc   = model.encode(ids, mask);
    const at::Tensor full  = model.decode(dec, enc, mask);  // [B, T, d]
    T5DecoderCache   cache;
    for (int64_t t = 0; t < dec.size(1); ++t) {
        INFO("step " << t);
        REQUIRE(at::allclose(model.decode(dec.slice(1, t, t + 1), enc, mask, &cache), full.slice(1, t, t + 1), 1e-5, 1e-5));
    }

    // generate(): each step's logits are those of the full pass over the tokens it chose.
    const T5Generation gen_out = model.generate(ids, mask, 5, /*keep_step_logits=*/true);
    const auto         steps   = static_cast<int64_t>(gen_out.step_logits.size());
    REQUIRE(steps > 0);
    const at::Tensor prefix = gen_out.ids.slice(1, 0, steps);  // decoder start + chosen tokens
    const at::Tensor logits = model.lm_logits(model.decode(prefix, model.encode(ids, mask), mask));  // [B, steps, V]
    // And the reference model (same weights, peft's X-LoRA by hand) gives the same logits.
    h.route(ids, mask);
    const at::Tensor ref_logits =
        h.reference.lm_logits(h.reference.decode(prefix, h.reference.encode(ids, mask), mask));
    for (int64_t t = 0; t < steps; ++t) {
        INFO("step " << t);
        REQUIRE(at::allclose(gen_out.step_logits[static_cast<size_t>(t)], logits.select(1, t), 1e-4, 1e-5));
        REQUIRE(at::allclose(gen_out.step_logits[static_cast<size_t>(t)], ref_logits.select(1, t), 1e-4, 1e-5));
    }
}

TEST_CASE("Gates that need the whole sequence in a feed-forward layer refuse --q-chunk when attached; a dropped X-LoRA "
          "gate leaves no scaling pass behind",
          "[unit][xlora-unit]") {
    TempDir                   dir;
    const std::vector<Expert> experts = random_experts(dir);  // expert 1 adapts wo, expert 2 wi_1
    GateConfig                config;
    for (const auto & e : experts) {
        config.experts.push_back(e.spec);
    }
    config.xlora.hidden_size = tiny_config()["d_model"].get<int64_t>();
    for (const GateKind kind : { GateKind::xlora, GateKind::cgm }) {
        INFO(gate_kind_name(kind));
        config.gate             = kind;
        T5Model model           = tiny_model();
        model.options().q_chunk = 2;
        const std::string message = error_of([&] { attach_gate(model, config, at::kFloat, 1); });
        REQUIRE(message.rfind("--q-chunk: the feed-forward layers carry gates that need the whole sequence", 0) == 0);
        REQUIRE(!model.has_input_router());
        for (const auto & m : model.linear_modules()) {  // nothing points into the refused mixture
            INFO(m.path);
            REQUIRE(m.linear->adapter == nullptr);
        }
    }
    // Gates on attention projections only: chunking the feed-forward layers changes nothing for them.
    config.targets          = { "q", "v" };
    T5Model chunked         = tiny_model();
    chunked.options().q_chunk = 2;
    REQUIRE_NOTHROW(attach_gate(chunked, config, at::kFloat, 1));

    config.gate    = GateKind::xlora;
    config.targets = {};
    T5Model  model = tiny_model();
    Adapters a     = attach_gate(model, config, at::kFloat, 1);
    REQUIRE(model.has_input_router());
    const auto [ids, mask] = inputs(model.config().vocab_size, 5, 2);
    REQUIRE_NOTHROW(model.encode(ids, mask));
    a.xlora.reset();
    REQUIRE(!model.has_input_router());
    // Its layers stay attached but refuse to run on the scalings of the last batch.
    REQUIRE_THROWS_WITH(model.encode(ids, mask), Catch::Contains("X-LoRA scalings are missing"));
}
