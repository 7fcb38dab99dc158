#pragma once
// What a classifier's predictions score: accuracy, macro-F1, per-class precision / recall / F1
// (scikit-learn's definitions, zero where a denominator is zero; the macro average over the classes
// that occur as target or prediction, as f1_score(average="macro") does), and the confusion matrix
// (rows: true class, columns: predicted), written as CSV and drawn by gnuplot with the class names.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cgm {

struct ClassScores {
    int64_t support   = 0;  // examples of the class
    double  precision = 0;
    double  recall    = 0;
    double  f1        = 0;
};

struct ClassificationMetrics {
    int64_t                           count    = 0;
    double                            accuracy = 0;
    double                            macro_f1 = 0;
    std::vector<ClassScores>          per_class;  // by class index
    std::vector<std::vector<int64_t>> confusion;  // [true][predicted]

    // {"count", "accuracy", "macro_f1", "per_class": {name: {support, precision, recall, f1}}}
    nlohmann::json to_json(const std::vector<std::string> & class_names) const;
};

// targets, predicted: class indices in [0, num_classes); an Error otherwise or if their sizes differ.
ClassificationMetrics classification_metrics(const std::vector<int64_t> & targets, const std::vector<int64_t> & predicted,
                                             int64_t num_classes);

// The metrics of each domain's examples (domains[i] is example i's), by domain name.
std::map<std::string, ClassificationMetrics> per_domain_metrics(const std::vector<std::string> & domains,
                                                                const std::vector<int64_t> & targets,
                                                                const std::vector<int64_t> & predicted, int64_t num_classes);

// confusion.csv (a header of class names, then one row per true class) and its picture; the PNG is
// skipped with a warning when gnuplot is missing, the CSV never is.
void write_confusion(const std::string & csv_path, const std::string & png_path, const ClassificationMetrics & metrics,
                     const std::vector<std::string> & class_names);

}  // namespace cgm
