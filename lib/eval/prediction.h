#pragma once
// One answer of a model to one example, whatever the modality: what evaluate writes to
// predictions.csv and reports computes metrics from.
#include <string>
#include <vector>

namespace cgm {

struct Prediction {
    std::string id;
    std::string domain;
    std::string target;     // gold answer: text, or a class name ("" when unlabeled)
    std::string predicted;  // answer text or class name
    bool        correct = false;
};

struct PredictResult {
    std::vector<Prediction> predictions;
    double                  loss = 0;  // mean loss over labeled examples
};

}  // namespace cgm
