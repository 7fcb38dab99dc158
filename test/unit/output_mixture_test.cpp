// Output-level mixtures of whole experts: each combiner against the experts' single passes on a
// tiny BEiT and T5 (expectation, pre-softmax, top-k, top-1 routing, stochastic draws, the dual
// temperature), the gate seeing the base's features, batch invariance, the penalties inside the
// training loss, the temperature schedule, and the settings' round trip through gate_config.json.
#include "adapters/gate_config.h"
#include "adapters/output_mixture.h"
#include "core/random.h"
#include "models/beit.h"
#include "models/t5.h"
#include "support/random_experts.h"
#include "support/temp_dir.h"
#include "support/tiny_beit.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>

using namespace cgm;
using namespace cgm::test;

namespace {

// Four classes, no dropout: training passes compare with evaluation passes.
BeitModel tiny_dropout_free_beit() {
    return tiny_beit({ { "num_labels", 4 }, { "drop_path_rate", 0.0 }, { "hidden_dropout_prob", 0.0 },
                       { "attention_probs_dropout_prob", 0.0 } });
}

const std::vector<std::vector<std::string>> kBeitTargets = { { "query", "value" }, { "value", "classifier" },
                                                              { "intermediate.dense", "classifier" } };

// A tiny BEiT with three random experts and an output mixture with `settings`.
struct MixedBeit {
    TempDir                        dir;
    BeitModel                      model;
    LoraMixture                    experts;
    std::shared_ptr<OutputMixture> mixture;

    explicit MixedBeit(const OutputMixSettings & settings)
        : model(tiny_dropout_free_beit()), experts(model.linear_modules(), random_experts(model, dir, kBeitTargets), at::kFloat) {
        mixture = std::make_shared<OutputMixture>(experts, model.hidden_size(), 6, settings, 11, model.device());
        model.set_output_mixture(mixture);
    }

    // The gate's weights on `pixels` at evaluation: [B, E]
    at::Tensor gate(const at::Tensor & pixels) {
        const bool was = model.training();
        model.set_training(false);
        experts.log().batches.clear();
        experts.log().enabled = true;
        model.forward(pixels);
        experts.log().enabled = false;
        model.set_training(was);
        return experts.log().batches.at("output").front();
    }

    // Every expert's logits alone: [E, B, C] (the mixture is detached for good).
    at::Tensor single_passes(const at::Tensor & pixels) {
        model.set_output_mixture(nullptr);
        std::vector<at::Tensor> z;
        for (int64_t e = 0; e < experts.num_experts(); ++e) {
            std::vector<double> w(static_cast<size_t>(experts.num_experts()), 0.0);
            w[static_cast<size_t>(e)] = 1.0;
            experts.attach_fixed(w);
            z.push_back(model.forward(pixels).logits.detach());
        }
        return at::stack(z);
    }

    // The gate's logits on the base's pooled features (gate input base): [B, E]
    at::Tensor gate_logits_on_base(const at::Tensor & pixels) {
        const NamedTensors g = mixture->parameters();  // lin1.{weight,bias}, output.{weight,bias}
        const CgmGate      gate{ g[0].second, g[1].second, g[2].second, g[3].second };
        model.set_output_mixture(nullptr);
        experts.attach_fixed(std::vector<double>(static_cast<size_t>(experts.num_experts()), 0.0));
        return gate.logits(model.forward(pixels).pooled).detach();
    }
};

OutputMixSettings with_combiner(Combiner c, int64_t k = 1) {
    OutputMixSettings s;
    s.combiner = c;
    s.top_k    = k;
    return s;
}

void require_close(const at::Tensor & got, const at::Tensor & want, double tol = 1e-5) {
    INFO("got " << got << "\nwant " << want);
    REQUIRE(got.sizes() == want.sizes());
    REQUIRE(at::allclose(got, want, tol, tol));
}

// A tiny T5 with two random experts (test/support) and an output mixture with `settings`.
struct MixedT5 {
    TempDir                         dir;
    T5Model                         model;
    LoraMixture                     experts;
    std::shared_ptr<OutputMixture>  mixture;

    explicit MixedT5(const OutputMixSettings & settings)
        : model(T5Model::random(T5Config::from_json({ { "vocab_size", 48 }, { "d_model", 16 }, { "d_kv", 4 }, { "d_ff", 32 },
                                                        { "num_layers", 2 }, { "num_heads", 2 }, { "feed_forward_proj", "relu" },
                                                        { "dropout_rate", 0.0 } },
                                                      "test"),
                                4)),
          experts(model.linear_modules(), random_experts(model, dir), at::kFloat) {
        mixture = std::make_shared<OutputMixture>(experts, model.hidden_size(), 4, settings, 3, model.device());
        model.set_output_mixture(mixture);
    }

    // The mixture detached, expert e alone.
    void only(int64_t e) {
        model.set_output_mixture(nullptr);
        experts.attach_fixed(e == 0 ? std::vector<double>{ 1, 0 } : std::vector<double>{ 0, 1 });
    }
};

// Each example's output is its chosen expert's alone: mixed [B, C], z [E, B, C], chosen [B].
void require_routed(const at::Tensor & mixed, const at::Tensor & z, const at::Tensor & chosen) {
    for (int64_t b = 0; b < mixed.size(0); ++b) {
        INFO("example " << b);
        require_close(mixed[b], z[chosen[b].item<int64_t>()][b]);
    }
}

}  // namespace

TEST_CASE("output mixture: expectation is the gate-weighted sum of the experts' single passes", "[unit][output-mixture]") {
    at::manual_seed(1);
    const at::Tensor pixels = at::randn({ 5, 3, 8, 8 });
    const at::Tensor labels = at::tensor({ 0, 1, 2, 3, 1 }, at::kLong);
    for (const GateInput input : { GateInput::embedding, GateInput::base }) {
        INFO("gate input " << (input == GateInput::base ? "base" : "embedding"));
        OutputMixSettings s = with_combiner(Combiner::expectation);
        s.input             = input;
        MixedBeit        m(s);
        const at::Tensor p     = m.gate(pixels);  // [B, E]
        const BeitOutput mixed = m.model.forward(pixels, labels);
        const at::Tensor z     = m.single_passes(pixels);                                 // [E, B, C]
        const at::Tensor want  = (p.t().unsqueeze(-1) * at::softmax(z, -1)).sum(0).log();  // [B, C]
        require_close(mixed.logits, want);
        require_close(mixed.loss, at::nll_loss(want, labels));
        REQUIRE(at::allclose(p.sum(1), at::ones({ 5 })));
    }
}

TEST_CASE("output mixture: pre-softmax mixes logits, top-k renormalises over the k best", "[unit][output-mixture]") {
    at::manual_seed(2);
    const at::Tensor pixels = at::randn({ 4, 3, 8, 8 });
    {
        MixedBeit        m(with_combiner(Combiner::pre_softmax));
        const at::Tensor p     = m.gate(pixels);
        const at::Tensor mixed = m.model.forward(pixels).logits;
        require_close(mixed, (p.t().unsqueeze(-1) * m.single_passes(pixels)).sum(0));
    }
    {
        MixedBeit        m(with_combiner(Combiner::top_k, 2));
        const at::Tensor p     = m.gate(pixels);
        const at::Tensor mixed = m.model.forward(pixels).logits;
        const at::Tensor z     = m.single_passes(pixels);
        at::Tensor       kept  = p.clone();
        kept.scatter_(1, p.argmin(1, true), 0.0);  // of 3 experts, the two best
        kept = kept / kept.sum(1, true);
        require_close(mixed, (kept.t().unsqueeze(-1) * at::softmax(z, -1)).sum(0).log());
    }
}

TEST_CASE("output mixture: routed to one expert, each example's logits are its chosen expert's alone", "[unit][output-mixture]") {
    at::manual_seed(3);
    const at::Tensor pixels = at::randn({ 6, 3, 8, 8 });
    for (const Combiner c : { Combiner::top_k, Combiner::stochastic, Combiner::loss_gate }) {
        INFO(combiner_name(c));
        MixedBeit        m(with_combiner(c));
        const at::Tensor chosen = m.gate(pixels).argmax(1);  // [B]
        const at::Tensor mixed  = m.model.forward(pixels).logits;
        const at::Tensor z      = m.single_passes(pixels);
        require_routed(mixed, z, chosen);
    }
}

TEST_CASE("output mixture: the loss-gate routes by its largest logit, also under the escort transform", "[unit][output-mixture]") {
    at::manual_seed(9);
    const at::Tensor  pixels = at::randn({ 6, 3, 8, 8 });
    OutputMixSettings s      = with_combiner(Combiner::loss_gate);
    s.transform              = GateTransform::escort;
    s.input                  = GateInput::base;
    MixedBeit        m(s);
    const at::Tensor mixed  = m.model.forward(pixels).logits;
    const at::Tensor chosen = m.gate_logits_on_base(pixels).argmax(1);  // [B]
    const at::Tensor z      = m.single_passes(pixels);
    require_routed(mixed, z, chosen);
}

TEST_CASE("output mixture: top-1 trains on the chosen expert's probabilities scaled by its weight", "[unit][output-mixture]") {
    at::manual_seed(10);
    const at::Tensor pixels = at::randn({ 5, 3, 8, 8 });
    const at::Tensor labels = at::tensor({ 0, 1, 2, 3, 2 }, at::kLong);
    MixedBeit        m(with_combiner(Combiner::top_k));
    const at::Tensor p = m.gate(pixels);
    m.model.set_training(true);
    const BeitOutput trained = m.model.forward(pixels, labels);
    m.model.set_training(false);
    const at::Tensor z      = m.single_passes(pixels);
    const at::Tensor chosen = p.argmax(1);
    std::vector<at::Tensor> rows;
    for (int64_t b = 0; b < 5; ++b) {
        const int64_t e = chosen[b].item<int64_t>();
        rows.push_back(p[b][e] * at::softmax(z[e][b], -1));
    }
    const at::Tensor want = at::stack(rows);  // [B, C], used as logits
    require_close(trained.logits, want);
    require_close(trained.loss, at::cross_entropy_loss(want, labels));
}

TEST_CASE("output mixture: an example's output does not depend on the rest of its batch", "[unit][output-mixture]") {
    at::manual_seed(4);
    const at::Tensor pixels = at::randn({ 4, 3, 8, 8 });
    for (const Combiner c : { Combiner::expectation, Combiner::top_k }) {
        MixedBeit        m(with_combiner(c));
        const at::Tensor whole = m.model.forward(pixels).logits;
        for (int64_t b = 0; b < 4; ++b) {
            require_close(m.model.forward(pixels.slice(0, b, b + 1)).logits[0], whole[b]);
        }
    }
}

TEST_CASE("output mixture: stochastic training draws per example, the same for a seed, with Jacobs' loss", "[unit][output-mixture]") {
    at::manual_seed(5);
    const at::Tensor pixels = at::randn({ 8, 3, 8, 8 });
    const at::Tensor labels = at::tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, at::kLong);
    MixedBeit        m(with_combiner(Combiner::stochastic));
    const at::Tensor p = m.gate(pixels);
    m.model.set_training(true);
    seed_torch(9);
    const BeitOutput first = m.model.forward(pixels, labels);
    seed_torch(9);
    const BeitOutput again = m.model.forward(pixels, labels);
    REQUIRE(at::equal(first.logits, again.logits));
    m.model.set_training(false);
    const at::Tensor z   = m.single_passes(pixels);                                              // [E, B, C]
    const at::Tensor nll = -at::log_softmax(z, -1).gather(-1, labels.view({ 1, -1, 1 }).expand({ 3, -1, 1 })).squeeze(-1);  // [E, B]
    require_close(first.loss, -((p * (-0.5 * nll.t()).exp()).sum(1) + 1e-15).log().mean());
    int64_t not_argmax = 0;  // draws, not the gate's choice (all 8 the argmax: chance < 1e-3 at these p)
    for (int64_t b = 0; b < 8; ++b) {  // each row is one expert's output
        const at::Tensor row = first.logits[b].detach();
        int64_t          drawn = -1;
        for (int64_t e = 0; e < 3; ++e) {
            drawn = at::allclose(row, z[e][b], 1e-5, 1e-5) ? e : drawn;
        }
        REQUIRE(drawn >= 0);
        not_argmax += drawn != p[b].argmax().item<int64_t>() ? 1 : 0;
    }
    INFO("gate weights " << p);
    REQUIRE(not_argmax > 0);
}

TEST_CASE("output mixture: training adds the penalties, the dual temperature mixes at T and at 1", "[unit][output-mixture]") {
    at::manual_seed(6);
    const at::Tensor pixels = at::randn({ 6, 3, 8, 8 });
    const at::Tensor labels = at::tensor({ 0, 1, 2, 3, 0, 1 }, at::kLong);
    const auto       expected = [](const at::Tensor & z, const at::Tensor & p) {
        return (p.t().unsqueeze(-1) * at::softmax(z, -1)).sum(0).log();
    };
    {
        OutputMixSettings s       = with_combiner(Combiner::expectation);
        s.regularisers.importance = 0.3;
        s.regularisers.entropy    = 0.2;
        MixedBeit        m(s);
        const at::Tensor p = m.gate(pixels);
        m.model.set_training(true);
        const at::Tensor loss = m.model.forward(pixels, labels).loss;
        m.model.set_training(false);
        const at::Tensor nll = at::nll_loss(expected(m.single_passes(pixels), p), labels);
        require_close(loss, nll + 0.3 * importance_cv2(p) + 0.2 * mean_entropy(p));
    }
    {
        // Dual temperature (experts frozen here): the loss reported is the mixture's at T; the gate's
        // gradient is that of the mixture at T = 1, as a plain gate at T = 1 gets it.
        OutputMixSettings dual = with_combiner(Combiner::expectation);
        dual.temperature       = 3.0;
        dual.dual_temperature  = true;
        MixedBeit        m(dual);
        MixedBeit        at_one(with_combiner(Combiner::expectation));  // the same gate, at T = 1
        const at::Tensor p_t = m.gate(pixels);
        m.model.set_training(true);
        at_one.model.set_training(true);
        const at::Tensor loss = m.model.forward(pixels, labels).loss;
        loss.backward();
        at_one.model.forward(pixels, labels).loss.backward();
        m.model.set_training(false);
        require_close(loss, at::nll_loss(expected(m.single_passes(pixels), p_t), labels));
        const NamedTensors gate = m.mixture->parameters(), reference = at_one.mixture->parameters();
        for (size_t i = 0; i < gate.size(); ++i) {
            INFO(gate[i].first);
            REQUIRE(gate[i].second.grad().defined());
            require_close(gate[i].second.grad(), reference[i].second.grad());
        }
    }
}

TEST_CASE("output mixture: the temperature follows the seed's schedule per epoch", "[unit][output-mixture]") {
    OutputMixSettings s       = with_combiner(Combiner::expectation);
    s.temperature             = 2.0;
    s.temperature_decay       = 0.5;
    s.temperature_decay_start = 1;
    MixedBeit m(s);
    for (int64_t epoch = 0; epoch < 6; ++epoch) {
        m.mixture->set_epoch(epoch);
        REQUIRE(m.mixture->temperature() == Approx(decayed_temperature(2.0, 0.5, 1, epoch)));
    }
    m.mixture->set_epoch(4);  // T2 = 2, T3 = 2 / 1.5, T4 = T3 / 2
    REQUIRE(m.mixture->temperature() == Approx(2.0 / 1.5 / 2.0));
}

TEST_CASE("output mixture on T5: teacher-forced expectation and the first generated step mix the experts", "[unit][output-mixture]") {
    MixedT5 m(with_combiner(Combiner::expectation));
    at::manual_seed(7);
    const at::Tensor ids    = at::randint(3, 48, { 3, 6 }, at::kLong);
    at::Tensor       mask   = at::ones({ 3, 6 }, at::kLong);
    mask[2].slice(0, 4).zero_();
    const at::Tensor labels = at::randint(3, 48, { 3, 4 }, at::kLong);
    m.experts.log().enabled = true;
    const T5Output   mixed  = m.model.forward(ids, mask, {}, labels);
    m.experts.log().enabled = false;
    const at::Tensor   p    = m.experts.log().batches.at("output").front();  // [B, E]
    const T5Generation gen  = m.model.generate(ids, mask, 3, true);

    std::vector<at::Tensor> z, step;
    for (int64_t e = 0; e < 2; ++e) {
        m.only(e);
        z.push_back(m.model.forward(ids, mask, {}, labels).logits);               // [B, T, V]
        step.push_back(m.model.generate(ids, mask, 1, true).step_logits.front());  // [B, V]
    }
    const at::Tensor pe = p.t().view({ 2, 3, 1, 1 });
    require_close(mixed.logits, (pe * at::softmax(at::stack(z), -1)).sum(0).log());
    require_close(gen.step_logits.front(), (p.t().unsqueeze(-1) * at::softmax(at::stack(step), -1)).sum(0).log());
}

TEST_CASE("output mixture on T5: stochastic training's loss is Jacobs' over each example's labelled tokens", "[unit][output-mixture]") {
    MixedT5 m(with_combiner(Combiner::stochastic));
    at::manual_seed(11);
    const at::Tensor ids  = at::randint(3, 48, { 3, 5 }, at::kLong);
    const at::Tensor mask = at::ones({ 3, 5 }, at::kLong);
    at::Tensor       labels = at::randint(3, 48, { 3, 4 }, at::kLong);
    labels[1].slice(0, 2).fill_(-100);
    m.experts.log().enabled = true;
    m.model.forward(ids, mask, {}, labels);
    m.experts.log().enabled = false;
    const at::Tensor p = m.experts.log().batches.at("output").front();  // [B, E]
    m.model.set_training(true);
    const at::Tensor loss = m.model.forward(ids, mask, {}, labels).loss;
    m.model.set_training(false);
    std::vector<at::Tensor> nll;  // per expert: [B], mean over each example's labelled tokens
    for (int64_t e = 0; e < 2; ++e) {
        m.only(e);
        const at::Tensor logp  = at::log_softmax(m.model.forward(ids, mask, {}, labels).logits, -1);  // [B, T, V]
        const at::Tensor valid = labels.ne(-100);
        const at::Tensor token = -logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid;
        nll.push_back(token.sum(1) / valid.sum(1));
    }
    const at::Tensor n = at::stack(nll, 1);  // [B, E]
    require_close(loss, -((p * (-0.5 * n).exp()).sum(1) + 1e-15).log().mean());
}

TEST_CASE("output mixture on T5: top-1 greedy decoding is the chosen expert's own decoding", "[unit][output-mixture]") {
    MixedT5 m(with_combiner(Combiner::top_k));
    at::manual_seed(12);
    const at::Tensor ids  = at::randint(3, 48, { 4, 6 }, at::kLong);
    at::Tensor       mask = at::ones({ 4, 6 }, at::kLong);
    mask[3].slice(0, 3).zero_();
    m.experts.log().enabled = true;
    m.model.forward(ids, mask, {}, at::randint(3, 48, { 4, 2 }, at::kLong));
    m.experts.log().enabled = false;
    const at::Tensor chosen = m.experts.log().batches.at("output").front().argmax(1);  // [B]
    const at::Tensor mixed  = m.model.generate(ids, mask, 5).ids;
    std::vector<at::Tensor> alone;
    for (int64_t e = 0; e < 2; ++e) {
        m.only(e);
        alone.push_back(m.model.generate(ids, mask, 5).ids);
    }
    for (int64_t b = 0; b < 4; ++b) {
        const at::Tensor own = alone[static_cast<size_t>(chosen[b].item<int64_t>())][b];
        INFO("example " << b);
        REQUIRE(at::equal(mixed[b].slice(0, 0, own.size(0)), own.slice(0, 0, mixed.size(1))));
    }
}

TEST_CASE("output mixture settings round-trip through gate_config.json; bad values name the file", "[unit][output-mixture]") {
    GateConfig c;
    c.base                          = "base";
    c.experts                       = { { "a", "x" }, { "b", "y" } };
    c.mix                           = MixMode::output;
    c.output.combiner               = Combiner::top_k;
    c.output.top_k                  = 2;
    c.output.transform              = GateTransform::escort;
    c.output.input                  = GateInput::base;
    c.output.temperature            = 2.5;
    c.output.eval_temperature       = 0.75;
    c.output.regularisers.importance = 0.2;
    const GateConfig back = GateConfig::from_json(c.to_json("g"), "gate_config.json");
    REQUIRE(back.mix == MixMode::output);
    REQUIRE(back.output.to_json() == c.output.to_json());
    nlohmann::json bad = c.to_json("g");
    bad["output"]["transform"] = "cube";
    REQUIRE_THROWS_WITH(GateConfig::from_json(bad, "g/gate_config.json"), Catch::Contains("g/gate_config.json") && Catch::Contains("cube"));
    bad = c.to_json("g");
    bad.erase("output");
    REQUIRE_THROWS_WITH(GateConfig::from_json(bad, "g/gate_config.json"), Catch::Contains("without its 'output' settings"));
    bad = c.to_json("g");
    bad["output"]["combiner"] = "vote";
    REQUIRE_THROWS_WITH(GateConfig::from_json(bad, "g/gate_config.json"), Catch::Contains("g/gate_config.json") && Catch::Contains("vote"));
    bad = c.to_json("g");
    bad["output"]["top_k"] = 3;
    REQUIRE_THROWS_WITH(GateConfig::from_json(bad, "g/gate_config.json"),
                        Catch::Contains("g/gate_config.json") && Catch::Contains("top_k 3 is more than the 2 experts"));
}
