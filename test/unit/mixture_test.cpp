// The mixture of LoRA experts: per-example gates do not depend on the batch, cached decoding
// equals the full pass, the seed mode on a hand-computed case, gradients reach only the gates.
#include "adapters/lora_mixture.h"
#include "eval/t5_predict.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/op_counter.h"
#include "support/random_experts.h"
#include "support/temp_dir.h"
#include "text/t5_tokenizer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <type_traits>

using namespace cgm;
using namespace cgm::test;

namespace {

// vocab_size: the tokenizer's size when the model reads tokenized text.
T5Model tiny_model(int64_t vocab_size = 64) {
    const nlohmann::json config = { { "vocab_size", vocab_size }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 64 },
                                    { "num_layers", 2 },   { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false } };
    return T5Model::random(T5Config::from_json(config, "test"), 3);
}

// A tiny model with two random experts and fresh per-example CGM gates.
struct GatedModel {
    TempDir     dir;
    T5Model     model;
    LoraMixture mixture;

    explicit GatedModel(int64_t vocab_size = 64)
        : model(tiny_model(vocab_size)), mixture(model.linear_modules(), random_experts(model, dir), at::kFloat) {
        mixture.attach_cgm(MixMode::example, 4, {}, 7);
    }
};

// The tokenizer fixture (found by kind), or nothing (the test is then skipped).
std::optional<T5Tokenizer> tokenizer_or_skip(const std::string & what) {
    const auto fixture = fixture_or_skip("t5_tokenizer", what);
    if (!fixture) {
        return std::nullopt;
    }
    return T5Tokenizer(tokenizer_dir(*fixture));
}

// Random token ids the model knows, avoiding pad (0), EOS (1) and unk (2).
at::Tensor random_ids(const T5Model & model, std::vector<int64_t> shape) {
    return at::randint(3, model.config().vocab_size, shape, at::kLong);
}

std::vector<McqRecord> records() {
    std::vector<McqRecord> out;
    const std::vector<std::string> questions = { "What is the opposite of sober?", "A rose is a kind of what?",
                                                 "Which word means: a large body of water?", "Hot?" };
    for (int i = 0; i < 7; ++i) {
        out.push_back({ std::to_string(i), i % 2 ? "a" : "b", questions[static_cast<size_t>(i) % questions.size()] +
                                                                  std::string(static_cast<size_t>(i), '!'),
                        { "drunk", "flower", "sea", "cold" }, i % 4 });
    }
    return out;
}

}  // namespace

TEST_CASE("per-example gates: a prediction does not depend on the rest of the batch", "[unit][mixture]") {
    const auto tokenizer_found = tokenizer_or_skip("per-example gates batch independence");
    if (!tokenizer_found) {
        return;
    }
    const T5Tokenizer & tokenizer = *tokenizer_found;
    TempDir           dir;
    T5Model           model = tiny_model(tokenizer.size());
    LoraMixture       mixture(model.linear_modules(), random_experts(model, dir), at::kFloat);
    mixture.attach_cgm(MixMode::example, 4, {}, 7);
    const TextSetup   setup{ PromptStyle::seed, TargetStyle::text, 64, 8 };
    const auto        examples = tokenize_records(tokenizer, records(), setup);

    // Each example alone and inside a padded batch of all of them: the same logits.
    std::vector<int64_t> all;
    for (size_t i = 0; i < examples.size(); ++i) {
        all.push_back(static_cast<int64_t>(i));
    }
    const Seq2SeqBatch batch  = make_batch(examples, all, 0);
    const at::Tensor   logits = model.forward(batch.input_ids, batch.attention_mask, {}, batch.labels).logits;
    for (int64_t i = 0; i < static_cast<int64_t>(examples.size()); ++i) {
        const Seq2SeqBatch one   = make_batch(examples, { i }, 0);
        const at::Tensor   alone = model.forward(one.input_ids, one.attention_mask, {}, one.labels).logits;
        INFO("record " << i);
        // float32 sums in another order (padded GEMMs): the fixtures' tolerance
        REQUIRE(at::allclose(alone[0], logits[i].slice(0, 0, alone.size(1)), 1e-4, 1e-4));
    }
    // And the predictions (ranked choices; random logits make greedy text prone to near-ties).
    const auto one     = predict_mcq(model, tokenizer, records(), setup, Scoring::rank, 1);
    const auto sixteen = predict_mcq(model, tokenizer, records(), setup, Scoring::rank, 16);
    for (size_t i = 0; i < one.predictions.size(); ++i) {
        REQUIRE(one.predictions[i].predicted == sixteen.predictions[i].predicted);
    }
    REQUIRE(one.loss == Approx(sixteen.loss).epsilon(1e-5));
}

TEST_CASE("per-example gates: decoding with the KV cache equals the full decoder pass", "[unit][mixture]") {
    GatedModel       g;
    T5Model &        model = g.model;
    const at::Tensor ids   = random_ids(model, { 2, 7 });
    at::Tensor       mask = at::ones({ 2, 7 }, at::kLong);
    mask[1].slice(0, 4).fill_(0);
    const at::Tensor dec  = random_ids(model, { 2, 5 });
    const at::Tensor enc  = model.encode(ids, mask);
    const at::Tensor full = model.decode(dec, enc, mask);
    T5DecoderCache   cache;
    for (int64_t t = 0; t < 5; ++t) {
        REQUIRE(at::allclose(model.decode(dec.slice(1, t, t + 1), enc, mask, &cache), full.slice(1, t, t + 1), 1e-5, 1e-5));
    }
}

TEST_CASE("seed mixing on a hand-computed case: batch-mean weights, A and B mixed separately", "[unit][mixture]") {
    // Two rank-1 experts on a 2x2 layer, s = 0.5 each; the gate computes z = relu(x).
    // A0 = [1 0], A1 = [0 1]; B0 = [1 0]^T, B1 = [0 1]^T
    const ExpertStack stack = stack_experts({ { 0, at::eye(2).slice(0, 0, 1), at::eye(2).slice(1, 0, 1), 0.5 },
                                              { 1, at::eye(2).slice(0, 1, 2), at::eye(2).slice(1, 1, 2), 0.5 } });
    auto gate           = std::make_shared<CgmGate>();
    gate->lin1_weight   = at::eye(2);
    gate->lin1_bias     = at::zeros({ 2 });
    gate->output_weight = at::eye(2);
    gate->output_bias   = at::zeros({ 2 });
    const MixtureLayer layer("m", stack, gate, at::Tensor(), MixMode::seed, nullptr);

    // Example 0: mean z = [2, 0]; example 1: mean z = [0, 2]. Softmaxes are mirror images, so the
    // batch mean is c = [0.5, 0.5]: A_mix = [0.5 0.5], B_mix = [0.5 0.5]^T and
    // y = 0.5 * (0.5 (a + b)) * [0.5, 0.5] = 0.125 (a + b) [1, 1].
    const at::Tensor x = at::tensor({ 1.f, 0.f, 3.f, 0.f, 0.f, 2.f, 0.f, 2.f }).view({ 2, 2, 2 });
    const at::Tensor y = layer.delta(x, AdapterCall{});
    const at::Tensor expected = at::tensor({ 0.125f, 0.125f, 0.375f, 0.375f, 0.25f, 0.25f, 0.25f, 0.25f }).view({ 2, 2, 2 });
    REQUIRE(at::allclose(y, expected, 1e-6, 1e-6));
    // The cross term B1 A0 x is present: a per-expert mixture sum_e c_e s B_e A_e x would give
    // [0.25, 0] for x = [1, 0].
    REQUIRE(y[0][0][1].item<float>() == Approx(0.125f));

    // The seed's weights depend on the batch: example 0 alone gets c = softmax([2, 0]).
    const at::Tensor alone = layer.delta(x.slice(0, 0, 1), AdapterCall{});
    const double     c0    = std::exp(2.0) / (std::exp(2.0) + 1.0);
    const double     mixed = 0.5 * (c0 * 1.0) * c0;  // s * (A_mix x) * B_mix[0] for x = [1, 0]
    REQUIRE(alone[0][0][0].item<double>() == Approx(mixed).epsilon(1e-5));
    REQUIRE(!at::allclose(alone, y.slice(0, 0, 1)));
}

TEST_CASE("a mixture cannot be copied or moved: its layers point at its gate log", "[unit][mixture]") {
    STATIC_REQUIRE(!std::is_copy_constructible_v<LoraMixture>);
    STATIC_REQUIRE(!std::is_copy_assignable_v<LoraMixture>);
    STATIC_REQUIRE(!std::is_move_constructible_v<LoraMixture>);
    STATIC_REQUIRE(!std::is_move_assignable_v<LoraMixture>);
}

TEST_CASE("seed mixing reads nothing back from the device: no .item() in a forward pass", "[unit][mixture]") {
    const ExpertStack stack = stack_experts({ { 0, at::randn({ 2, 3 }), at::randn({ 4, 2 }), 0.5 },
                                              { 1, at::randn({ 2, 3 }), at::randn({ 4, 2 }), 0.5 } });
    const auto        gate  = std::make_shared<CgmGate>();
    gate->lin1_weight       = at::randn({ 2, 3 });
    gate->lin1_bias         = at::zeros({ 2 });
    gate->output_weight     = at::randn({ 2, 2 });
    gate->output_bias       = at::zeros({ 2 });
    const MixtureLayer layer("m", stack, gate, at::Tensor(), MixMode::seed, nullptr);
    const at::Tensor   x = at::randn({ 2, 5, 3 });
    {
        const OpCounter items("aten::_local_scalar_dense");
        const at::Tensor y = layer.delta(x, AdapterCall{});
        REQUIRE(y.sizes() == at::IntArrayRef({ 2, 5, 4 }));
        REQUIRE(items.count() == 0);
    }
    const OpCounter items("aten::_local_scalar_dense");  // the counter sees an .item() when there is one
    (void)x.sum().item<float>();
    REQUIRE(items.count() == 1);
}

TEST_CASE("training a mixture: gradients reach only the gate weights", "[unit][mixture]") {
    GatedModel g;
    T5Model &     model   = g.model;
    LoraMixture & mixture = g.mixture;
    const at::Tensor ids    = random_ids(model, { 2, 6 });
    const at::Tensor labels = random_ids(model, { 2, 3 });
    model.forward(ids, at::ones({ 2, 6 }, at::kLong), {}, labels).loss.backward();
    for (const auto & [name, t] : model.named_parameters()) {
        INFO(name);
        REQUIRE(!t.grad().defined());
    }
    int64_t with_grad = 0;
    for (const auto & [name, t] : mixture.gate_parameters()) {
        with_grad += t.grad().defined() && t.grad().abs().sum().item<double>() > 0;
    }
    REQUIRE(with_grad == static_cast<int64_t>(mixture.gate_parameters().size()));
    // Every module of the model that one of the experts targets gets a gate.
    size_t adapted = 0;
    for (const auto & m : model.linear_modules()) {
        const std::string leaf = m.path.substr(m.path.rfind('.') + 1);
        bool              any  = false;
        for (const auto & targets : random_expert_targets()) {
            any = any || std::find(targets.begin(), targets.end(), leaf) != targets.end();
        }
        adapted += any;
    }
    REQUIRE(adapted > 0);
    REQUIRE(mixture.gated_modules().size() == adapted);
}

TEST_CASE("with train_experts the stacked experts get gradients too", "[unit][mixture]") {
    GatedModel g;
    T5Model &     model   = g.model;
    LoraMixture & mixture = g.mixture;
    mixture.train_experts();
    const at::Tensor ids = random_ids(model, { 2, 6 });
    model.forward(ids, at::ones({ 2, 6 }, at::kLong), {}, random_ids(model, { 2, 3 })).loss.backward();
    for (const auto & [name, t] : mixture.expert_parameters()) {
        INFO(name);
        REQUIRE(t.grad().defined());
    }
    for (const auto & [name, t] : model.named_parameters()) {
        REQUIRE(!t.grad().defined());
    }
}

TEST_CASE("logged gate weights of an example do not depend on the batch (padding excluded)", "[unit][mixture]") {
    const auto tokenizer_found = tokenizer_or_skip("logged gate weights batch independence");
    if (!tokenizer_found) {
        return;
    }
    const T5Tokenizer & tokenizer = *tokenizer_found;
    GatedModel          g(tokenizer.size());
    const auto        examples = tokenize_records(tokenizer, records(), TextSetup{ PromptStyle::seed, TargetStyle::text, 64, 8 });
    const auto logged = [&](const std::vector<int64_t> & rows) {
        g.mixture.log() = GateLog{ true, {}, false, {} };
        const Seq2SeqBatch b = make_batch(examples, rows, 0);
        g.model.forward(b.input_ids, b.attention_mask, {}, b.labels);
        g.mixture.log().enabled = false;
        return g.mixture.log().batches;  // module -> [[rows, E]]
    };
    const auto all = logged({ 0, 1, 2, 3, 4, 5, 6 });
    for (int64_t i = 0; i < 7; ++i) {
        const auto alone = logged({ i });
        for (const auto & [module, rows] : alone) {
            INFO(module << " record " << i);
            REQUIRE(at::allclose(rows.front()[0], all.at(module).front()[i], 1e-5, 1e-5));
        }
    }
}
