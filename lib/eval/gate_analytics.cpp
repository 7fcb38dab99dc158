#include "eval/gate_analytics.h"

#include "core/error.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

namespace cgm {
namespace {

// H(q) in nats, 0 log 0 = 0.
double entropy(const double * q, int64_t e) {
    double h = 0;
    for (int64_t i = 0; i < e; ++i) {
        h -= q[i] > 0 ? q[i] * std::log(q[i]) : 0.0;
    }
    return h;
}

int64_t argmax(const double * q, int64_t e) {
    int64_t best = 0;
    for (int64_t i = 1; i < e; ++i) {
        best = q[i] > q[best] ? i : best;
    }
    return best;
}

// p as contiguous float64 [N, E], checked against the class keys.
at::Tensor checked_weights(const at::Tensor & p, const std::vector<std::string> & classes) {
    if (p.dim() != 2 || p.size(0) != static_cast<int64_t>(classes.size())) {
        std::string shape;
        for (const int64_t s : p.sizes()) {
            shape += (shape.empty() ? "" : ", ") + std::to_string(s);
        }
        throw Error("gate analytics: expected [" + std::to_string(classes.size()) + ", experts] weights (one row per class key), got [" +
                    shape + "]");
    }
    return p.to(at::kCPU, at::kDouble).contiguous();
}

}  // namespace

ExpertClassTable expert_class_table(const at::Tensor & p, const std::vector<std::string> & classes) {
    const at::Tensor w = checked_weights(p, classes);
    const int64_t    n = w.size(0), e = w.size(1);
    std::map<std::string, std::vector<int64_t>> rows;
    for (int64_t i = 0; i < n; ++i) {
        std::vector<int64_t> & row = rows.try_emplace(classes[static_cast<size_t>(i)], static_cast<size_t>(e), 0).first->second;
        ++row[static_cast<size_t>(argmax(w.data_ptr<double>() + i * e, e))];
    }
    ExpertClassTable table;
    for (auto & [name, row] : rows) {
        table.classes.push_back(name);
        table.counts.push_back(std::move(row));
    }
    return table;
}

GateStats gate_stats(const at::Tensor & p, const std::vector<std::string> & classes) {
    const at::Tensor w = checked_weights(p, classes);  // [N, E]
    const int64_t    n = w.size(0), e = w.size(1);
    GateStats        s;
    s.count = n;
    if (n == 0 || e == 0) {
        return s;
    }
    const double * rows = w.data_ptr<double>();
    s.mean.assign(static_cast<size_t>(e), 0.0);
    s.variance.assign(static_cast<size_t>(e), 0.0);
    for (int64_t i = 0; i < n; ++i) {
        s.mean_entropy += entropy(rows + i * e, e) / static_cast<double>(n);
        for (int64_t j = 0; j < e; ++j) {
            s.mean[static_cast<size_t>(j)] += rows[i * e + j] / static_cast<double>(n);
        }
    }
    s.entropy_of_mean = entropy(s.mean.data(), e);
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < e; ++j) {
            const double q = rows[i * e + j], m = s.mean[static_cast<size_t>(j)];
            s.variance[static_cast<size_t>(j)] += (q - m) * (q - m) / static_cast<double>(n);
            s.kl_to_mean += q > 0 ? q * std::log(q / m) / static_cast<double>(n) : 0.0;
        }
    }
    if (e > 1) {  // the importance n * mean: its CV is the mean's
        double mean_of_mean = 0, var = 0;
        for (const double m : s.mean) {
            mean_of_mean += m / static_cast<double>(e);
        }
        for (const double m : s.mean) {
            var += (m - mean_of_mean) * (m - mean_of_mean) / static_cast<double>(e - 1);
        }
        s.cv = std::sqrt(var) / mean_of_mean;
    }
    // I(expert; class) = sum_{c,e} P(c,e) log(P(c,e) / (P(c) P(e))) over the argmax counts.
    const ExpertClassTable table = expert_class_table(p, classes);
    std::vector<double>    expert_total(static_cast<size_t>(e), 0.0);
    for (const auto & row : table.counts) {
        for (int64_t j = 0; j < e; ++j) {
            expert_total[static_cast<size_t>(j)] += static_cast<double>(row[static_cast<size_t>(j)]);
        }
    }
    for (const auto & row : table.counts) {
        double class_total = 0;
        for (const int64_t c : row) {
            class_total += static_cast<double>(c);
        }
        for (int64_t j = 0; j < e; ++j) {
            const double joint = static_cast<double>(row[static_cast<size_t>(j)]);
            if (joint > 0) {
                s.expert_class_mi += joint / static_cast<double>(n) *
                                     std::log(joint * static_cast<double>(n) / (class_total * expert_total[static_cast<size_t>(j)]));
            }
        }
    }
    return s;
}

nlohmann::json to_json(const GateStats & s, const std::vector<std::string> & experts) {
    nlohmann::json mean, variance;
    for (size_t j = 0; j < experts.size() && j < s.mean.size(); ++j) {
        mean[experts[j]]     = s.mean[j];
        variance[experts[j]] = s.variance[j];
    }
    return { { "count", s.count },           { "mean_entropy", s.mean_entropy }, { "entropy_of_mean", s.entropy_of_mean },
             { "mean", mean },               { "variance", variance },           { "cv", s.cv },
             { "kl_to_mean", s.kl_to_mean }, { "expert_class_mi", s.expert_class_mi } };
}

}  // namespace cgm
