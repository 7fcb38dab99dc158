// CGM gates pinned down on hand-computed cases: the per-example (masked mean) and causal (running
// mean) modes, the seed mode with padding and while generating, the seed's refusals and
// --gate-targets. Every expected value is computed here in float64, from the experts' own A, B
// and alpha / r and the gate's weights, never by the mixture code.
#include "adapters/lora_mixture.h"
#include "core/error.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/reference_expert.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {

// The gate's logits in float64: relu(x W1^T + b1) W2^T + b2. x: [..., d_in] -> [..., E]
at::Tensor reference_logits(const at::Tensor & x, const CgmGate & g) {
    const auto d = [](const at::Tensor & t) { return t.detach().to(at::kDouble); };
    const at::Tensor h = at::relu(at::matmul(d(x), d(g.lin1_weight).t()) + d(g.lin1_bias));  // [..., H]
    return at::matmul(h, d(g.output_weight).t()) + d(g.output_bias);                        // [..., E]
}

// The experts' stack as LoraMixture builds it: rows of A in expert order, columns of B alike.
ExpertStack stack_of(const std::vector<ExpertWeights> & experts) {
    std::vector<ModuleExpert> present;
    for (size_t e = 0; e < experts.size(); ++e) {
        present.push_back({ static_cast<int64_t>(e), experts[e].A, experts[e].B, experts[e].s });
    }
    return stack_experts(present);
}

// Two experts of different rank and scaling on a 3 -> 2 layer.
std::vector<ExpertWeights> two_experts() {
    ExpertWeights e0, e1;
    e0.A = at::tensor({ 0.5f, -1.0f, 0.25f }).view({ 1, 3 });
    e0.B = at::tensor({ 1.0f, -0.5f }).view({ 2, 1 });
    e0.s = 0.5;
    e1.A = at::tensor({ 0.2f, 0.4f, -0.6f, -0.3f, 0.1f, 0.7f }).view({ 2, 3 });
    e1.B = at::tensor({ 0.3f, -0.8f, 1.1f, 0.6f }).view({ 2, 2 });
    e1.s = 2.0;
    return { e0, e1 };
}

// A gate Linear(3, 2) -> ReLU -> Linear(2, 2) whose logits differ clearly between inputs.
std::shared_ptr<CgmGate> hand_gate() {
    auto g           = std::make_shared<CgmGate>();
    g->lin1_weight   = at::tensor({ 1.0f, -0.5f, 0.3f, -0.4f, 0.8f, 0.6f }).view({ 2, 3 });
    g->lin1_bias     = at::tensor({ 0.1f, -0.2f });
    g->output_weight = at::tensor({ 1.5f, -1.0f, -0.7f, 1.2f }).view({ 2, 2 });
    g->output_bias   = at::tensor({ 0.05f, -0.1f });
    return g;
}

// sum_e c_e s_e B_e A_e x with weights per row and position. x: [B, T, d_in], c: [B, 1|T, E]
at::Tensor reference_mixture(const at::Tensor & x, const at::Tensor & c, const std::vector<ExpertWeights> & experts) {
    at::Tensor y;
    for (size_t e = 0; e < experts.size(); ++e) {
        const at::Tensor term = c.select(-1, static_cast<int64_t>(e)).unsqueeze(-1) * reference_expert(x, experts[e]);
        y = y.defined() ? y + term : term;
    }
    return y;  // [B, T, d_out]
}

// exp(v_e) / sum_f exp(v_f) over a row of plain numbers.
std::vector<double> softmax_of(const std::vector<double> & v) {
    double total = 0;
    for (double a : v) {
        total += std::exp(a);
    }
    std::vector<double> out;
    for (double a : v) {
        out.push_back(std::exp(a) / total);
    }
    return out;
}

// Inputs [2, 3, 3] whose padded position (row 1, position 2) has large values: it would move
// any mean that included it.
at::Tensor padded_inputs() {
    return at::tensor({ 0.3f, -1.2f, 0.8f, 1.5f, 0.2f, -0.4f, -0.7f, 0.9f, 1.1f,  //
                        0.6f, 0.1f, -0.9f, -1.3f, 1.4f, 0.5f, 9.0f, -7.0f, 6.0f })
        .view({ 2, 3, 3 });
}

nlohmann::json tiny_t5_config() {
    return { { "vocab_size", 48 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 24 },
             { "num_layers", 2 },  { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
             { "tie_word_embeddings", false } };
}

// A LoRA expert with random non-zero B on the model's modules named in `targets`, saved under dir.
struct SavedExpert {
    ExpertSpec  spec;
    LoraAdapter adapter;
    double      scaling;  // alpha / r, by hand
};

SavedExpert save_expert(T5Model & model, const TempDir & dir, const std::string & name, int64_t r, double alpha,
                        const std::vector<std::string> & targets, uint64_t seed) {
    LoraConfig config;
    config.r       = r;
    config.alpha   = alpha;
    config.targets = targets;
    LoraAdapter   adapter = create_lora(model.linear_modules(), config, seed);
    at::Generator gen     = at::make_generator<at::CPUGeneratorImpl>(1000 + seed);
    for (auto & [path, layer] : adapter.layers) {
        c10::NoGradGuard no_grad;
        layer->B.copy_(at::randn(layer->B.sizes(), gen) * 0.5);
    }
    const std::string path = dir.file(name);
    save_lora(adapter, path);
    return { { name, path }, adapter, alpha / static_cast<double>(r) };
}

// The expert's weights on one module, when it adapts that module.
std::optional<ExpertWeights> expert_on(const SavedExpert & e, const std::string & module) {
    for (const auto & [path, layer] : e.adapter.layers) {
        if (path == module) {
            return ExpertWeights{ layer->A, layer->B, e.scaling };
        }
    }
    return std::nullopt;
}

std::string leaf_of(const std::string & path) { return path.substr(path.rfind('.') + 1); }

// Records every call of the adapter it wraps: its input, its output and where it was called.
struct RecordedCall {
    std::string path;
    at::Tensor  x, y;
    bool        causal = false;
    int64_t     offset = 0;
};

class Recorder : public LinearAdapter {
  public:
    Recorder(std::string path, std::shared_ptr<LinearAdapter> inner, std::vector<RecordedCall> * calls)
        : path_(std::move(path)), inner_(std::move(inner)), calls_(calls) {}
    at::Tensor delta(const at::Tensor & x, const AdapterCall & call) const override {
        at::Tensor y = inner_->delta(x, call);
        calls_->push_back({ path_, x.detach().clone(), y.detach().clone(), call.causal, call.offset });
        return y;
    }
    bool needs_whole_sequence() const override { return inner_->needs_whole_sequence(); }

  private:
    std::string                    path_;
    std::shared_ptr<LinearAdapter> inner_;
    std::vector<RecordedCall> *    calls_;
};

// The gate of `module` as the mixture exposes its tensors.
CgmGate gate_of(const LoraMixture & mixture, const std::string & module) {
    CgmGate g;
    for (const auto & [name, t] : mixture.gate_parameters()) {
        const std::string p = module + ".context_gated_mixing.";
        if (name == p + "lin1.weight") g.lin1_weight = t;
        if (name == p + "lin1.bias") g.lin1_bias = t;
        if (name == p + "output.weight") g.output_weight = t;
        if (name == p + "output.bias") g.output_bias = t;
    }
    REQUIRE(g.lin1_weight.defined());
    REQUIRE(g.output_bias.defined());
    return g;
}

// The seed's delta in float64: c = mean over the batch of softmax(mean over the whole sequence of
// the gate logits), then y = s (sum_e c_e B_e)(sum_e c_e A_e) x. x: [B, T, d_in]
at::Tensor reference_seed(const at::Tensor & x, const CgmGate & g, const std::vector<ExpertWeights> & experts) {
    const at::Tensor z = reference_logits(x, g);                   // [B, T, E]
    const at::Tensor c = at::softmax(z.mean(1), -1).mean(0);       // [E]
    at::Tensor       a_mix, b_mix;
    for (size_t e = 0; e < experts.size(); ++e) {
        const double     ce = c[static_cast<int64_t>(e)].item<double>();
        const at::Tensor a  = experts[e].A.detach().to(at::kDouble) * ce;
        const at::Tensor b  = experts[e].B.detach().to(at::kDouble) * ce;
        a_mix               = a_mix.defined() ? a_mix + a : a;
        b_mix               = b_mix.defined() ? b_mix + b : b;
    }
    return at::matmul(at::matmul(x.detach().to(at::kDouble), a_mix.t()), b_mix.t()) * experts[0].s;
}

}  // namespace

TEST_CASE("example-mode gate on a padded encoder batch: softmax of the masked mean of the logits over real tokens",
          "[unit][gates]") {
    const auto         experts = two_experts();
    const auto         gate    = hand_gate();
    GateLog            log{ true, {}, false, {} };
    const MixtureLayer layer("enc.q", stack_of(experts), gate, at::Tensor(), MixMode::example, &log);

    const at::Tensor x    = padded_inputs();                                      // [2, 3, 3]
    const at::Tensor mask = at::tensor({ 1, 1, 1, 1, 1, 0 }, at::kLong).view({ 2, 3 });  // row 1: last is padding
    AdapterCall      call;
    call.mask = &mask;
    const at::Tensor y = layer.delta(x, call);  // [2, 3, 2]

    // By hand: per row, the mean of the logits over its real positions only (3 and 2 of them),
    // then a softmax over the two experts.
    const at::Tensor z = reference_logits(x, *gate);  // [2, 3, 2]
    at::Tensor       c = at::zeros({ 2, 1, 2 }, at::kDouble);
    for (int64_t b = 0; b < 2; ++b) {
        const int64_t       real = b == 0 ? 3 : 2;
        std::vector<double> mean(2, 0.0);
        for (int64_t t = 0; t < real; ++t) {
            for (int64_t e = 0; e < 2; ++e) {
                mean[static_cast<size_t>(e)] += z[b][t][e].item<double>() / static_cast<double>(real);
            }
        }
        const auto p = softmax_of(mean);
        c[b][0][0]   = p[0];
        c[b][0][1]   = p[1];
    }
    // The two rows get clearly different weights, and the padded position would move row 1's.
    REQUIRE(std::abs(c[0][0][0].item<double>() - c[1][0][0].item<double>()) > 0.05);
    const at::Tensor expected = reference_mixture(x, c, experts);
    REQUIRE(y.sizes() == expected.sizes());
    REQUIRE(at::allclose(y.to(at::kDouble), expected, 1e-5, 1e-6));

    // The log keeps one weight vector per example: the same c.
    REQUIRE(log.batches.at("enc.q").size() == 1);
    REQUIRE(at::allclose(log.batches.at("enc.q").front().to(at::kDouble), c.squeeze(1), 1e-5, 1e-6));

    // Without a mask every position is real: row 1 then includes its (large) last position.
    const at::Tensor all_real = layer.delta(x, AdapterCall{});
    REQUIRE(at::allclose(all_real[0].to(at::kDouble), expected[0], 1e-5, 1e-6));
    REQUIRE(!at::allclose(all_real[1].to(at::kDouble), expected[1], 1e-3, 1e-3));
}

TEST_CASE("causal gate: position t averages the logits of positions <= t; chunked calls with the state agree",
          "[unit][gates]") {
    const auto         experts = two_experts();
    const auto         gate    = hand_gate();
    GateLog            log{ true, {}, false, {} };
    const MixtureLayer layer("dec.q", stack_of(experts), gate, at::Tensor(), MixMode::example, &log);

    at::Generator    gen = at::make_generator<at::CPUGeneratorImpl>(5);
    const at::Tensor x   = at::randn({ 2, 5, 3 }, gen) * 1.5;  // [B, T, d_in]
    // Decoder mask: row 1's last two positions predict no real token (used by the log only).
    const at::Tensor dec_mask = at::tensor({ 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, at::kLong).view({ 2, 5 });

    // By hand: p[b, t] = softmax(sum_{u <= t} z[b, u] / (t + 1)).
    const at::Tensor z = reference_logits(x, *gate);  // [2, 5, 2]
    at::Tensor       p = at::zeros({ 2, 5, 2 }, at::kDouble);
    for (int64_t b = 0; b < 2; ++b) {
        std::vector<double> sum(2, 0.0);
        for (int64_t t = 0; t < 5; ++t) {
            std::vector<double> mean;
            for (int64_t e = 0; e < 2; ++e) {
                sum[static_cast<size_t>(e)] += z[b][t][e].item<double>();
                mean.push_back(sum[static_cast<size_t>(e)] / static_cast<double>(t + 1));
            }
            const auto w = softmax_of(mean);
            p[b][t][0]   = w[0];
            p[b][t][1]   = w[1];
        }
    }
    const at::Tensor expected = reference_mixture(x, p, experts);  // [2, 5, 2]

    // The whole sequence at once.
    at::Tensor  state;
    AdapterCall full;
    full.causal = true;
    full.mask   = &dec_mask;
    full.state  = &state;
    REQUIRE(at::allclose(layer.delta(x, full).to(at::kDouble), expected, 1e-5, 1e-6));
    // Logged: the mean of p over each row's real decoder positions.
    const at::Tensor logged = log.batches.at("dec.q").front().to(at::kDouble);  // [2, E]
    REQUIRE(at::allclose(logged[0], p[0].mean(0), 1e-5, 1e-6));
    REQUIRE(at::allclose(logged[1], p[1].slice(0, 0, 3).mean(0), 1e-5, 1e-6));

    // The same in chunks of 2, 1 and 2 positions, the state carrying the running sum.
    at::Tensor              carried;
    std::vector<at::Tensor> parts;
    for (const auto & [start, len] : std::vector<std::pair<int64_t, int64_t>>{ { 0, 2 }, { 2, 1 }, { 3, 2 } }) {
        AdapterCall step;
        step.causal = true;
        step.offset = start;
        step.state  = &carried;
        parts.push_back(layer.delta(x.slice(1, start, start + len), step));
    }
    REQUIRE(at::allclose(at::cat(parts, 1).to(at::kDouble), expected, 1e-5, 1e-6));

    // A later step without the state cannot know the earlier logits: refused.
    AdapterCall stateless;
    stateless.causal = true;
    stateless.offset = 3;
    REQUIRE_THROWS_AS(layer.delta(x.slice(1, 3, 4), stateless), Error);
}

TEST_CASE("seed-mode gate on a padded batch: mean over the whole sequence (padding included), softmax, batch mean, "
          "A and B mixed",
          "[unit][gates]") {
    // Same rank and scaling (the seed's requirement); different A and B.
    ExpertWeights e0, e1;
    e0.A = at::tensor({ 0.5f, -1.0f, 0.25f, 0.3f, 0.2f, -0.6f }).view({ 2, 3 });
    e0.B = at::tensor({ 1.0f, -0.5f, 0.4f, 0.9f }).view({ 2, 2 });
    e1.A = at::tensor({ 0.2f, 0.4f, -0.6f, -0.3f, 0.1f, 0.7f }).view({ 2, 3 });
    e1.B = at::tensor({ 0.3f, -0.8f, 1.1f, 0.6f }).view({ 2, 2 });
    e0.s = e1.s = 1.5;
    const std::vector<ExpertWeights> experts{ e0, e1 };
    const auto                       gate = hand_gate();
    const MixtureLayer               layer("m", stack_of(experts), gate, at::Tensor(), MixMode::seed, nullptr);

    const at::Tensor x    = padded_inputs();
    const at::Tensor mask = at::tensor({ 1, 1, 1, 1, 1, 0 }, at::kLong).view({ 2, 3 });
    AdapterCall      call;
    call.mask = &mask;  // the seed ignores it
    const at::Tensor y = layer.delta(x, call);

    // By hand: per row the plain mean over its 3 positions (the padded one too), softmax, then
    // the mean of the two rows' weights.
    const at::Tensor    z = reference_logits(x, *gate);  // [2, 3, 2]
    std::vector<double> c(2, 0.0);
    for (int64_t b = 0; b < 2; ++b) {
        std::vector<double> mean(2, 0.0);
        for (int64_t t = 0; t < 3; ++t) {
            for (int64_t e = 0; e < 2; ++e) {
                mean[static_cast<size_t>(e)] += z[b][t][e].item<double>() / 3.0;
            }
        }
        const auto p = softmax_of(mean);
        c[0] += p[0] / 2.0;
        c[1] += p[1] / 2.0;
    }
    const at::Tensor a_mix = e0.A.to(at::kDouble) * c[0] + e1.A.to(at::kDouble) * c[1];  // [2, 3]
    const at::Tensor b_mix = e0.B.to(at::kDouble) * c[0] + e1.B.to(at::kDouble) * c[1];  // [2, 2]
    const at::Tensor expected = at::matmul(at::matmul(x.to(at::kDouble), a_mix.t()), b_mix.t()) * 1.5;
    REQUIRE(at::allclose(y.to(at::kDouble), expected, 1e-5, 1e-6));
    // The cross terms matter: the per-expert mixture sum_e c_e s B_e A_e x is something else.
    const at::Tensor per_expert = reference_mixture(x, at::tensor(c, at::kDouble).view({ 1, 1, 2 }), experts);
    REQUIRE(!at::allclose(y.to(at::kDouble), per_expert, 1e-3, 1e-3));
}

TEST_CASE("seed-mode gates while decoding with the cache: each step's gate sees only the current token",
          "[unit][gates]") {
    TempDir                  dir;
    T5Model                  model = T5Model::random(T5Config::from_json(tiny_t5_config(), "test"), 11);
    const SavedExpert        e0    = save_expert(model, dir, "e0", 2, 4.0, { "q", "v" }, 1);
    const SavedExpert        e1    = save_expert(model, dir, "e1", 2, 4.0, { "q", "v" }, 2);
    LoraMixture              mixture(model.linear_modules(), { e0.spec, e1.spec }, at::kFloat);
    mixture.attach_cgm(MixMode::seed, 4, {}, 3);
    std::vector<RecordedCall> calls;
    for (const auto & m : model.linear_modules()) {
        if (m.linear->adapter) {
            m.linear->adapter = std::make_shared<Recorder>(m.path, m.linear->adapter, &calls);
        }
    }

    const int64_t    vocab = model.config().vocab_size;
    at::Generator    gen   = at::make_generator<at::CPUGeneratorImpl>(4);
    const at::Tensor ids   = at::randint(3, vocab, { 3, 6 }, gen);
    at::Tensor       mask  = at::ones({ 3, 6 }, at::kLong);
    mask[2].slice(0, 3).fill_(0);
    const at::Tensor dec = at::randint(3, vocab, { 3, 4 }, gen);
    c10::NoGradGuard no_grad;
    const at::Tensor enc = model.encode(ids, mask);
    calls.clear();
    T5DecoderCache          cache;
    std::vector<at::Tensor> steps;
    for (int64_t t = 0; t < 4; ++t) {
        steps.push_back(model.decode(dec.slice(1, t, t + 1), enc, mask, &cache));
    }

    // Every call, recorded from the real decoding: its output is the seed's formula applied to
    // exactly the input it got. Decoder-side modules get one token per step.
    const auto check_calls = [&]() {
        int64_t one_token_calls = 0;
        for (const RecordedCall & r : calls) {
            INFO(r.path << " offset " << r.offset);
            std::vector<ExpertWeights> here;
            for (const SavedExpert * e : { &e0, &e1 }) {
                here.push_back(*expert_on(*e, r.path));
            }
            REQUIRE(at::allclose(r.y.to(at::kDouble), reference_seed(r.x, gate_of(mixture, r.path), here), 1e-4, 1e-5));
            if (r.causal) {
                REQUIRE(r.x.size(1) == 1);
                ++one_token_calls;
            }
        }
        return one_token_calls;
    };
    // q and v of self-attention and q of cross-attention, per decoder block and step.
    REQUIRE(check_calls() == 4 * model.config().num_decoder_layers * 3);

    // So decoding step by step is not the teacher-forced pass (whose gates see all 4 tokens).
    const at::Tensor full = model.decode(dec, enc, mask);
    REQUIRE(!at::allclose(at::cat(steps, 1), full, 1e-4, 1e-4));

    // generate() decodes the same way: every step's gate sees its one new token.
    calls.clear();
    const T5Generation generated = model.generate(ids, mask, 3, /*keep_step_logits=*/true);
    const auto         n_steps   = static_cast<int64_t>(generated.step_logits.size());
    REQUIRE(n_steps > 0);
    REQUIRE(check_calls() == n_steps * model.config().num_decoder_layers * 3);
}

TEST_CASE("seed mode is refused (--mix seed) when a gated module's experts differ in rank or alpha, or one is missing",
          "[unit][gates]") {
    TempDir   dir;
    T5Model   model = T5Model::random(T5Config::from_json(tiny_t5_config(), "test"), 11);
    const auto refused = [&](const std::vector<ExpertSpec> & experts, const std::vector<std::string> & targets) {
        LoraMixture mixture(model.linear_modules(), experts, at::kFloat);
        try {
            mixture.attach_cgm(MixMode::seed, 4, targets, 1);
        } catch (const Error & e) {
            INFO(e.what());
            REQUIRE(std::string(e.what()).find("--mix seed") != std::string::npos);
            return true;
        }
        return false;
    };
    const SavedExpert base      = save_expert(model, dir, "base", 2, 4.0, { "q", "v" }, 1);
    const SavedExpert same      = save_expert(model, dir, "same", 2, 4.0, { "q", "v" }, 2);
    const SavedExpert rank3     = save_expert(model, dir, "rank3", 3, 6.0, { "q", "v" }, 3);  // same alpha/r, other rank
    const SavedExpert alpha8    = save_expert(model, dir, "alpha8", 2, 8.0, { "q", "v" }, 4);
    const SavedExpert only_q_wo = save_expert(model, dir, "only_q_wo", 2, 4.0, { "q", "wo" }, 5);

    REQUIRE(!refused({ base.spec, same.spec }, {}));
    REQUIRE(refused({ base.spec, rank3.spec }, {}));
    REQUIRE(refused({ base.spec, alpha8.spec }, {}));
    // v has only one of the two experts: refused where v is gated, accepted with gates on q only.
    REQUIRE(refused({ base.spec, only_q_wo.spec }, {}));
    REQUIRE(!refused({ base.spec, only_q_wo.spec }, { "q" }));
    // The per-example mode has no such requirement.
    LoraMixture mixed(model.linear_modules(), { base.spec, rank3.spec, alpha8.spec }, at::kFloat);
    REQUIRE_NOTHROW(mixed.attach_cgm(MixMode::example, 4, {}, 1));
}

TEST_CASE("--gate-targets q: gates only on the q modules, the other adapted modules mix their experts equally",
          "[unit][gates]") {
    TempDir           dir;
    T5Model           model = T5Model::random(T5Config::from_json(tiny_t5_config(), "test"), 11);
    const SavedExpert e0    = save_expert(model, dir, "e0", 2, 4.0, { "q", "v" }, 1);
    const SavedExpert e1    = save_expert(model, dir, "e1", 3, 3.0, { "q", "v", "wo" }, 2);
    const SavedExpert e2    = save_expert(model, dir, "e2", 1, 2.0, { "q", "wo" }, 3);
    const std::vector<const SavedExpert *> experts{ &e0, &e1, &e2 };
    LoraMixture mixture(model.linear_modules(), { e0.spec, e1.spec, e2.spec }, at::kFloat);
    mixture.attach_cgm(MixMode::example, 4, { "q" }, 9);

    // Independently: the model's modules named q, in model order (every expert adapts q).
    std::vector<std::string> q_modules;
    for (const auto & m : model.linear_modules()) {
        if (leaf_of(m.path) == "q") {
            q_modules.push_back(m.path);
        }
    }
    REQUIRE(!q_modules.empty());
    REQUIRE(mixture.gated_modules() == q_modules);
    REQUIRE(mixture.gate_parameters().size() == 4 * q_modules.size());

    // Every other module with an expert: delta = sum_e (1/E) s_e B_e A_e x over the experts there.
    at::Generator gen      = at::make_generator<at::CPUGeneratorImpl>(8);
    const double  equal    = 1.0 / static_cast<double>(experts.size());
    int64_t       ungated  = 0;
    for (const auto & m : model.linear_modules()) {
        const std::string leaf = leaf_of(m.path);
        INFO(m.path);
        if (leaf != "v" && leaf != "wo") {
            REQUIRE((leaf == "q" || m.linear->adapter == nullptr));
            continue;
        }
        REQUIRE(m.linear->adapter != nullptr);
        const at::Tensor x = at::randn({ 2, 3, m.linear->weight.size(1) }, gen);  // [B, T, d_in]
        at::Tensor       expected = at::zeros({ 2, 3, m.linear->weight.size(0) }, at::kDouble);
        for (const SavedExpert * e : experts) {
            if (const auto w = expert_on(*e, m.path)) {
                expected = expected + equal * reference_expert(x, *w);
            }
        }
        REQUIRE(at::allclose(m.linear->adapter->delta(x, AdapterCall{}).to(at::kDouble), expected, 1e-5, 1e-6));
        ++ungated;
    }
    REQUIRE(ungated > 0);

    // Targets that name no module with experts are refused.
    for (const std::vector<std::string> & targets : { std::vector<std::string>{ "k" }, { "nothing" } }) {
        try {
            mixture.attach_cgm(MixMode::example, 4, targets, 9);
            FAIL("targets " << targets.front() << " were accepted");
        } catch (const Error & e) {
            REQUIRE(std::string(e.what()).find("--gate-targets") != std::string::npos);
        }
    }
}
