#include "eval/report.h"

#include "eval/metrics.h"
#include "io/csv.h"

#include <nlohmann/json.hpp>

#include <map>

namespace cgm {
namespace {

nlohmann::json scores_json(const AnswerScores & s) {
    return { { "count", s.count },
             { "accuracy", s.accuracy() },
             { "substring_accuracy", s.substring_accuracy() },
             { "squad_em", 100.0 * s.accuracy() },
             { "squad_f1", 100.0 * s.mean_f1() } };
}

}  // namespace

void write_predictions_csv(const std::string & path, const std::vector<Prediction> & predictions) {
    std::vector<CsvRow> rows;
    for (const auto & p : predictions) {
        rows.push_back({ p.id, p.domain, p.target, p.predicted, p.target.empty() ? "" : (p.correct ? "1" : "0") });
    }
    write_csv(path, { "id", "domain", "target", "predicted", "correct" }, rows);
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

}  // namespace cgm
