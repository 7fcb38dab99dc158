// Ranked scoring: the chosen answer is the choice whose target has the best mean token
// log-likelihood, checked against each candidate's own teacher-forced loss, on choices of
// different lengths where the summed log-likelihood would choose otherwise.
#include "eval/t5_predict.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "text/t5_tokenizer.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

T5Model tiny_model(int64_t vocab, uint64_t seed) {
    const nlohmann::json config = { { "vocab_size", vocab }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 64 },
                                    { "num_layers", 2 },     { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false } };
    return T5Model::random(T5Config::from_json(config, "test"), seed);
}

// Choices of very different token lengths.
std::vector<McqRecord> records() {
    const std::vector<std::string> questions = { "Which word means a large body of water?", "A rose is a kind of what?",
                                                 "What is the opposite of sober?", "Pick one.", "Which is an animal?",
                                                 "Which sentence is longest?" };
    const std::vector<std::vector<std::string>> choices = {
        { "sea", "an extremely wide and salty expanse of ocean water", "lake district", "it" },
        { "flower", "a woody perennial flowering plant of the genus", "shrub", "x" },
        { "drunk and disorderly in the evening", "dry", "intoxicated person", "no" },
    };
    std::vector<McqRecord> out;
    for (size_t i = 0; i < questions.size(); ++i) {
        out.push_back({ "r" + std::to_string(i), "d", questions[i], choices[i % choices.size()], 0 });
    }
    return out;
}

// Per choice, the mean teacher-forced log-likelihood of its target tokens (EOS included) and
// their count, from a forward pass on that choice alone.
struct ChoiceScore {
    double  mean_loglik;
    int64_t tokens;
};

std::vector<ChoiceScore> choice_scores(const T5Model & model, const T5Tokenizer & tokenizer, const McqRecord & r,
                                       const TextSetup & setup) {
    const std::vector<int64_t> source = tokenizer.encode(render_prompt(r, setup.prompt));
    const at::Tensor           ids    = at::tensor(source, at::kLong).unsqueeze(0);  // [1, S]
    std::vector<ChoiceScore>   out;
    for (size_t j = 0; j < r.choices.size(); ++j) {
        const std::vector<int64_t> target = tokenizer.encode(render_target(r, setup.prompt, setup.target, static_cast<int64_t>(j)));
        const at::Tensor labels = at::tensor(target, at::kLong).unsqueeze(0);  // [1, T]
        const double     loss   = model.forward(ids, at::ones_like(ids), {}, labels).loss.item<double>();  // mean CE
        out.push_back({ -loss, static_cast<int64_t>(target.size()) });
    }
    return out;
}

int64_t best_by(const std::vector<ChoiceScore> & scores, bool summed) {
    int64_t best = 0;
    for (size_t j = 1; j < scores.size(); ++j) {
        const auto value = [&](size_t k) { return summed ? scores[k].mean_loglik * scores[k].tokens : scores[k].mean_loglik; };
        if (value(j) > value(static_cast<size_t>(best))) {
            best = static_cast<int64_t>(j);
        }
    }
    return best;
}

// Gap between the best and the second best mean: small gaps are float-order ties, not checked.
double mean_margin(const std::vector<ChoiceScore> & scores) {
    std::vector<double> means;
    for (const auto & s : scores) {
        means.push_back(s.mean_loglik);
    }
    std::sort(means.rbegin(), means.rend());
    return means[0] - means[1];
}

}  // namespace

TEST_CASE("rank scoring picks the best mean log-likelihood per token, where the summed one would differ", "[unit][rank]") {
    const auto tokenizer_fixture = fixture_or_skip("t5_tokenizer", "rank scoring test");
    if (!tokenizer_fixture) {
        return;
    }
    const T5Tokenizer tokenizer(tokenizer_dir(*tokenizer_fixture));
    const TextSetup   setup{ PromptStyle::seed, TargetStyle::text, 64, 64 };
    int64_t           disagreements = 0, checked = 0;
    for (uint64_t seed = 1; seed <= 3; ++seed) {
        const T5Model          model = tiny_model(tokenizer.size(), seed);
        std::vector<McqRecord> recs  = records();
        std::vector<int64_t>   expected;
        for (auto & r : recs) {
            const auto scores = choice_scores(model, tokenizer, r, setup);
            expected.push_back(best_by(scores, false));
            disagreements += best_by(scores, false) != best_by(scores, true) && mean_margin(scores) > 1e-3;
            r.label = static_cast<int64_t>(r.id.back() - '0') % static_cast<int64_t>(r.choices.size());
        }
        // Batches of 4 records: candidates of other records and lengths are padded beside them.
        const PredictResult result = predict_mcq(model, tokenizer, recs, setup, Scoring::rank, 4);
        REQUIRE(result.predictions.size() == recs.size());
        for (size_t i = 0; i < recs.size(); ++i) {
            const auto scores = choice_scores(model, tokenizer, recs[i], setup);
            if (mean_margin(scores) < 1e-3) {
                continue;
            }
            INFO("seed " << seed << " record " << i);
            const std::string want = render_target(recs[i], setup.prompt, setup.target, expected[i]);
            REQUIRE(result.predictions[i].predicted == want);
            REQUIRE(result.predictions[i].correct == (expected[i] == recs[i].label));
            ++checked;
        }
    }
    // The check means something only where the sum would have chosen another answer.
    REQUIRE(disagreements >= 2);
    REQUIRE(checked >= 12);
}
