// Ranked scoring keeps every choice's score: predict_mcq's choice_scores are each candidate's mean
// token log-likelihood (its own teacher-forced loss, negated), the prediction is their first argmax,
// and predictions.csv holds them in score_A, score_B, ... columns that read back as the same
// doubles (empty where a record has fewer choices); the other scorings write today's columns.
#include "eval/report.h"
#include "eval/t5_predict.h"
#include "io/csv.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"
#include "text/t5_tokenizer.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {

T5Model tiny_model(int64_t vocab) {
    const nlohmann::json config = { { "vocab_size", vocab }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 64 },
                                    { "num_layers", 2 },     { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false } };
    return T5Model::random(T5Config::from_json(config, "test"), 7);
}

// Records of 4, 3 and 2 choices of different lengths, one unlabeled.
std::vector<McqRecord> records() {
    return { { "r0", "d", "Which word means a large body of water?", { "sea", "an expanse of salty water", "lake", "it" }, 1 },
             { "r1", "d", "A rose is a kind of what?", { "flower", "a woody perennial plant", "shrub" }, 0 },
             { "r2", "e", "What is the opposite of sober?", { "drunk", "dry" }, -1 },
             { "r3", "e", "Pick one.", { "x", "yes", "no way at all", "z" }, 3 } };
}

// The mean log-likelihood of choice j's target tokens (EOS included), from a forward pass on it alone.
double own_score(const T5Model & model, const T5Tokenizer & tokenizer, const McqRecord & r, size_t j,
                 const TextSetup & setup) {
    const at::Tensor ids    = at::tensor(tokenizer.encode(render_prompt(r, setup.prompt)), at::kLong).unsqueeze(0);  // [1, S]
    const at::Tensor labels = at::tensor(tokenizer.encode(render_target(r, setup.prompt, setup.target, static_cast<int64_t>(j))),
                                         at::kLong)
                                  .unsqueeze(0);  // [1, T]
    return -model.forward(ids, at::ones_like(ids), {}, labels).loss.item<double>();
}

const TextSetup kSetup{ PromptStyle::seed, TargetStyle::text, 64, 64 };

// The fixture tokenizer and a tiny random T5 of its vocabulary; none (the test is skipped, visibly)
// without the fixture.
struct TinyT5 {
    T5Tokenizer tokenizer;
    T5Model     model;
};
std::optional<TinyT5> tiny_t5(const std::string & what) {
    const auto fixture = fixture_or_skip("t5_tokenizer", what);
    if (!fixture) {
        return std::nullopt;
    }
    T5Tokenizer tokenizer(tokenizer_dir(*fixture));
    T5Model     model = tiny_model(tokenizer.size());
    return TinyT5{ std::move(tokenizer), std::move(model) };
}

}  // namespace

TEST_CASE("ranked scoring keeps each choice's score, its argmax is the prediction, and predictions.csv holds them",
          "[unit][choice-scores]") {
    const std::optional<TinyT5> t5 = tiny_t5("choice scores test");
    if (!t5) {
        return;
    }
    const auto & [tokenizer, model] = *t5;
    const TextSetup &            setup = kSetup;
    const std::vector<McqRecord> recs  = records();
    // Batches of 3: one batch mixes records of 4, 3 and 2 choices, the other holds one record.
    const PredictResult ranked = predict_mcq(model, tokenizer, recs, setup, Scoring::rank, 3);
    REQUIRE(ranked.predictions.size() == recs.size());
    for (size_t i = 0; i < recs.size(); ++i) {
        INFO("record " << recs[i].id);
        const std::vector<double> & scores = ranked.predictions[i].choice_scores;
        REQUIRE(scores.size() == recs[i].choices.size());
        for (size_t j = 0; j < scores.size(); ++j) {
            REQUIRE(scores[j] == Approx(own_score(model, tokenizer, recs[i], j, setup)).margin(1e-5));
        }
        const auto best = static_cast<int64_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
        REQUIRE(ranked.predictions[i].predicted == render_target(recs[i], setup.prompt, setup.target, best));
    }

    TempDir tmp;
    write_predictions_csv(tmp.file("ranked.csv"), ranked.predictions);
    const std::vector<CsvRow> rows = read_csv(tmp.file("ranked.csv"));
    REQUIRE(rows.size() == recs.size() + 1);
    REQUIRE(rows[0] == CsvRow{ "id", "domain", "target", "predicted", "correct", "score_A", "score_B", "score_C", "score_D" });
    for (size_t i = 0; i < recs.size(); ++i) {
        INFO("record " << recs[i].id);
        const Prediction & p = ranked.predictions[i];
        REQUIRE(rows[i + 1].size() == 9);
        REQUIRE(CsvRow(rows[i + 1].begin(), rows[i + 1].begin() + 5) ==
                CsvRow{ p.id, p.domain, p.target, p.predicted, p.target.empty() ? "" : (p.correct ? "1" : "0") });
        for (size_t j = 0; j < 4; ++j) {
            const std::string & cell = rows[i + 1][5 + j];
            if (j < p.choice_scores.size()) {
                REQUIRE(std::strtod(cell.c_str(), nullptr) == p.choice_scores[j]);  // exactly: round-trip text
            } else {
                REQUIRE(cell.empty());
            }
        }
    }

    for (const Scoring other : { Scoring::generate, Scoring::teacher_forced }) {
        const PredictResult r = predict_mcq(model, tokenizer, recs, setup, other, 3);
        for (const auto & p : r.predictions) {
            REQUIRE(p.choice_scores.empty());
        }
        write_predictions_csv(tmp.file("other.csv"), r.predictions);
        REQUIRE(read_csv(tmp.file("other.csv"))[0] == CsvRow{ "id", "domain", "target", "predicted", "correct" });
    }
}

TEST_CASE("the loss is the mean over labeled target tokens; batch_mean_loss the plain mean of the batches' means",
          "[unit][choice-scores]") {
    const std::optional<TinyT5> t5 = tiny_t5("evaluation losses test");
    if (!t5) {
        return;
    }
    const auto & [tokenizer, model] = *t5;
    const TextSetup &            setup = kSetup;
    const std::vector<McqRecord> recs  = records();
    // Each labeled record alone: its own mean token loss and token count.
    std::vector<double> losses, tokens;
    for (const auto & r : recs) {
        if (r.label >= 0) {
            losses.push_back(predict_mcq(model, tokenizer, { r }, setup, Scoring::teacher_forced, 1).loss);
            tokens.push_back(static_cast<double>(tokenizer.encode(render_target(r, setup.prompt, setup.target)).size()));
        }
    }
    REQUIRE(losses.size() == 3);
    double weighted = 0, total = 0;
    for (size_t i = 0; i < losses.size(); ++i) {
        weighted += losses[i] * tokens[i];
        total += tokens[i];
    }
    const PredictResult ones = predict_mcq(model, tokenizer, recs, setup, Scoring::teacher_forced, 1);
    CHECK(ones.loss == Approx(weighted / total).epsilon(1e-5));
    CHECK(ones.batch_mean_loss == Approx((losses[0] + losses[1] + losses[2]) / 3).epsilon(1e-5));  // the unlabeled batch skipped
    // Batches of 2: {r0, r1} and {r2 (unlabeled), r3}.
    const PredictResult pairs = predict_mcq(model, tokenizer, recs, setup, Scoring::teacher_forced, 2);
    const double        first = (losses[0] * tokens[0] + losses[1] * tokens[1]) / (tokens[0] + tokens[1]);
    CHECK(pairs.batch_mean_loss == Approx((first + losses[2]) / 2).epsilon(1e-5));
    CHECK(pairs.loss == Approx(weighted / total).epsilon(1e-5));
}

TEST_CASE("score columns are named by choice letter, as spreadsheet columns past Z", "[unit][choice-scores]") {
    REQUIRE(choice_score_column(0) == "score_A");
    REQUIRE(choice_score_column(1) == "score_B");
    REQUIRE(choice_score_column(25) == "score_Z");
    REQUIRE(choice_score_column(26) == "score_AA");
    REQUIRE(choice_score_column(27) == "score_AB");
    REQUIRE(choice_score_column(701) == "score_ZZ");
    REQUIRE(choice_score_column(702) == "score_AAA");
}
