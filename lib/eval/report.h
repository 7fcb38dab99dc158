#pragma once
// What evaluate writes: predictions.csv (id,domain,target,predicted,correct, and with ranked
// scoring score_A,score_B,...: each choice's score) and the metrics of the labeled predictions,
// overall and per domain.
#include "eval/prediction.h"

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace cgm {

// Predictions with choice scores add one column per choice position after `correct`, named by
// choice_score_column; a record with fewer choices leaves the rest empty. Scores are written as
// the shortest text that reads back as the same double.
void write_predictions_csv(const std::string & path, const std::vector<Prediction> & predictions);

// "score_A" for choice 0, ..., "score_Z", then "score_AA", ...
std::string choice_score_column(size_t choice);

// {"overall": {count, accuracy, substring_accuracy, squad_em, squad_f1}, "unlabeled": N,
//  "per_domain": {...}}: count and the scores are over labeled predictions (scores null when none).
nlohmann::json answer_metrics(const std::vector<Prediction> & predictions);

}  // namespace cgm
