#include "eval/report.h"

#include "eval/metrics.h"
#include "io/csv.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace cgm {
namespace {

// Scores over no labeled example are null, not 0: unlabeled data has no accuracy.
nlohmann::json scores_json(const AnswerScores & s) {
    const auto score = [&](double value) { return s.count > 0 ? nlohmann::json(value) : nlohmann::json(); };
    return { { "count", s.count },
             { "accuracy", score(s.accuracy()) },
             { "substring_accuracy", score(s.substring_accuracy()) },
             { "squad_em", score(100.0 * s.accuracy()) },
             { "squad_f1", score(100.0 * s.mean_f1()) } };
}

// The shortest text that reads back as exactly this double.
std::string exact_text(double value) {
    char                       buffer[64];
    const std::to_chars_result end = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, end.ptr);
}

}  // namespace

std::string choice_score_column(size_t choice) {
    std::string letters;  // A..Z, then AA, AB, ... as spreadsheet columns
    for (size_t n = choice + 1; n > 0; n = (n - 1) / 26) {
        letters.insert(letters.begin(), static_cast<char>('A' + (n - 1) % 26));
    }
    return "score_" + letters;
}

void write_predictions_csv(const std::string & path, const std::vector<Prediction> & predictions) {
    size_t choices = 0;  // score columns: as many as the record with the most scored choices
    for (const auto & p : predictions) {
        choices = std::max(choices, p.choice_scores.size());
    }
    CsvRow header = { "id", "domain", "target", "predicted", "correct" };
    for (size_t j = 0; j < choices; ++j) {
        header.push_back(choice_score_column(j));
    }
    std::vector<CsvRow> rows;
    for (const auto & p : predictions) {
        CsvRow row = { p.id, p.domain, p.target, p.predicted, p.target.empty() ? "" : (p.correct ? "1" : "0") };
        for (size_t j = 0; j < choices; ++j) {  // empty where a record has fewer choices
            row.push_back(j < p.choice_scores.size() ? exact_text(p.choice_scores[j]) : "");
        }
        rows.push_back(std::move(row));
    }
    write_csv(path, header, rows);
}

nlohmann::json answer_metrics(const std::vector<Prediction> & predictions) {
    AnswerScores                        overall;
    std::map<std::string, AnswerScores> per_domain;
    int64_t                             unlabeled = 0;
    for (const auto & p : predictions) {
        if (p.target.empty()) {
            ++unlabeled;
            continue;
        }
        overall.add(p.predicted, p.target);
        per_domain[p.domain].add(p.predicted, p.target);
    }
    nlohmann::json out = { { "overall", scores_json(overall) }, { "unlabeled", unlabeled } };
    out["per_domain"]  = nlohmann::json::object();
    for (const auto & [domain, s] : per_domain) {
        out["per_domain"][domain] = scores_json(s);
    }
    return out;
}

std::optional<double> labeled_accuracy(const std::vector<Prediction> & predictions) {
    AnswerScores scores;
    for (const auto & p : predictions) {
        if (!p.target.empty()) {
            scores.add(p.predicted, p.target);
        }
    }
    return scores.count > 0 ? std::optional<double>(scores.accuracy()) : std::nullopt;
}

bool looks_like_copy_artifact(double teacher_forced_accuracy, double rank_accuracy) {
    return teacher_forced_accuracy - rank_accuracy > kCopyArtifactGap;
}

}  // namespace cgm
