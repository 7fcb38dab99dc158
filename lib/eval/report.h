#pragma once
// What evaluate writes: predictions.csv (id,domain,target,predicted,correct) and the metrics of
// the labeled predictions, overall and per domain.
#include "eval/prediction.h"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace cgm {

void write_predictions_csv(const std::string & path, const std::vector<Prediction> & predictions);

// {"overall": {count, accuracy, substring_accuracy, squad_em, squad_f1}, "per_domain": {...}}
nlohmann::json answer_metrics(const std::vector<Prediction> & predictions);

}  // namespace cgm
