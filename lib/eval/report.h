#pragma once
// What evaluate writes: predictions.csv (id,domain,target,predicted,correct, and with ranked
// scoring score_A,score_B,...: each choice's score) and the metrics of the labeled predictions,
// overall and per domain.
#include "eval/prediction.h"

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
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

// The accuracy over the labeled predictions; none without labels.
std::optional<double> labeled_accuracy(const std::vector<Prediction> & predictions);

// Teacher-forced accuracy this far above rank accuracy is the copy artifact: with tied embeddings
// an untrained T5 copies its decoder input, which teacher forcing turns back into the gold answer.
constexpr double kCopyArtifactGap = 0.2;
bool looks_like_copy_artifact(double teacher_forced_accuracy, double rank_accuracy);

}  // namespace cgm
