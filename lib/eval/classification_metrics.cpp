#include "eval/classification_metrics.h"

#include "core/error.h"
#include "eval/plots.h"
#include "io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <ostream>

namespace cgm {

namespace {

double ratio(double a, double b) {
    return b > 0 ? a / b : 0.0;
}

// A class name as a CSV field and a gnuplot label: quotes and separators would break either.
std::string plain(std::string name) {
    for (char & c : name) {
        if (c == ',' || c == '"' || c == '\'' || c == '\n') {
            c = '_';
        }
    }
    return name;
}

}  // namespace

std::map<std::string, ClassificationMetrics> per_domain_metrics(const std::vector<std::string> & domains,
                                                                const std::vector<int64_t> & targets,
                                                                const std::vector<int64_t> & predicted, int64_t num_classes) {
    if (domains.size() != targets.size()) {
        throw Error("per-domain metrics: " + std::to_string(domains.size()) + " domains for " + std::to_string(targets.size()) +
                    " targets");
    }
    std::map<std::string, std::vector<int64_t>> domain_targets, domain_predicted;
    for (size_t i = 0; i < targets.size(); ++i) {
        domain_targets[domains[i]].push_back(targets[i]);
        domain_predicted[domains[i]].push_back(predicted.at(i));
    }
    std::map<std::string, ClassificationMetrics> out;
    for (const auto & [domain, t] : domain_targets) {
        out[domain] = classification_metrics(t, domain_predicted[domain], num_classes);
    }
    return out;
}

ClassificationMetrics classification_metrics(const std::vector<int64_t> & targets, const std::vector<int64_t> & predicted,
                                             int64_t num_classes) {
    if (targets.size() != predicted.size()) {
        throw Error("classification metrics: " + std::to_string(targets.size()) + " targets but " +
                    std::to_string(predicted.size()) + " predictions");
    }
    const auto            n = static_cast<size_t>(num_classes);
    ClassificationMetrics m;
    m.count = static_cast<int64_t>(targets.size());
    m.confusion.assign(n, std::vector<int64_t>(n, 0));
    for (size_t i = 0; i < targets.size(); ++i) {
        for (const int64_t c : { targets[i], predicted[i] }) {
            if (c < 0 || c >= num_classes) {
                throw Error("classification metrics: class " + std::to_string(c) + " outside 0.." +
                            std::to_string(num_classes - 1));
            }
        }
        ++m.confusion[static_cast<size_t>(targets[i])][static_cast<size_t>(predicted[i])];
    }
    double  correct = 0, f1_sum = 0;
    int64_t present = 0;
    m.per_class.resize(n);
    for (size_t c = 0; c < n; ++c) {
        double predicted_as = 0;
        for (size_t t = 0; t < n; ++t) {
            predicted_as += static_cast<double>(m.confusion[t][c]);
            m.per_class[c].support += m.confusion[c][t];
        }
        const double hits = static_cast<double>(m.confusion[c][c]);
        ClassScores & s   = m.per_class[c];
        s.precision       = ratio(hits, predicted_as);
        s.recall          = ratio(hits, static_cast<double>(s.support));
        s.f1              = ratio(2 * s.precision * s.recall, s.precision + s.recall);
        correct += hits;
        if (s.support > 0 || predicted_as > 0) {
            f1_sum += s.f1;
            ++present;
        }
    }
    m.accuracy = ratio(correct, static_cast<double>(m.count));
    m.macro_f1 = ratio(f1_sum, static_cast<double>(present));
    return m;
}

nlohmann::json ClassificationMetrics::to_json(const std::vector<std::string> & class_names) const {
    nlohmann::json classes = nlohmann::json::object();
    for (size_t c = 0; c < per_class.size(); ++c) {
        const ClassScores & s = per_class[c];
        classes[c < class_names.size() ? class_names[c] : std::to_string(c)] = {
            { "support", s.support }, { "precision", s.precision }, { "recall", s.recall }, { "f1", s.f1 }
        };
    }
    return { { "count", count }, { "accuracy", accuracy }, { "macro_f1", macro_f1 }, { "per_class", classes } };
}

void write_confusion(const std::string & csv_path, const std::string & png_path, const ClassificationMetrics & metrics,
                     const std::vector<std::string> & class_names) {
    const auto name = [&](size_t c) { return plain(c < class_names.size() ? class_names[c] : std::to_string(c)); };
    write_file_atomic(csv_path, [&](std::ostream & out) {
        out << "true\\predicted";
        for (size_t c = 0; c < metrics.confusion.size(); ++c) {
            out << ',' << name(c);
        }
        out << '\n';
        for (size_t t = 0; t < metrics.confusion.size(); ++t) {
            out << name(t);
            for (const int64_t v : metrics.confusion[t]) {
                out << ',' << v;
            }
            out << '\n';
        }
    });
    plot_count_heatmap(csv_path, png_path, "predicted", "true");  // true classes top to bottom
}

}  // namespace cgm
