#include "eval/routing.h"

#include "core/error.h"
#include "eval/gate_analytics.h"
#include "eval/plots.h"
#include "io/csv.h"
#include "io/json_file.h"
#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

namespace fs = std::filesystem;

namespace cgm {

RoutingReport collect_routing(const GateLog & log, const std::vector<std::string> & modules,
                              const std::vector<std::string> & experts) {
    std::vector<at::Tensor> per_module;
    for (const auto & m : modules) {
        const auto it = log.batches.find(m);
        if (it == log.batches.end() || it->second.empty()) {
            throw Error("routing: no gate weights were logged for " + m);
        }
        per_module.push_back(at::cat(it->second, 0).to(at::kFloat));  // [N, E]
    }
    return { modules, experts, at::stack(per_module, 1) };  // [N, L, E]
}

RoutingSummary summarize_routing(const RoutingReport & report, const std::vector<Prediction> & predictions) {
    const int64_t n = report.weights.size(0);
    if (n != static_cast<int64_t>(predictions.size())) {
        throw Error("routing: " + std::to_string(n) + " logged examples for " + std::to_string(predictions.size()) + " predictions");
    }
    const at::Tensor per_example = report.weights.mean(1);  // [N, E]: averaged over modules
    const at::Tensor top         = per_example.argmax(-1);  // [N]
    RoutingSummary   summary;
    for (int64_t i = 0; i < n; ++i) {
        const std::string & domain = predictions[static_cast<size_t>(i)].domain;
        DomainRouting &     d      = summary.domains[domain];
        const auto          own    = std::find(report.experts.begin(), report.experts.end(), domain);
        d.mean    = d.mean.defined() ? d.mean + per_example[i] : per_example[i].clone();
        d.has_own = own != report.experts.end();
        d.own_top += d.has_own && top[i].item<int64_t>() == own - report.experts.begin();
        ++d.count;
    }
    for (auto & [domain, d] : summary.domains) {
        d.mean = d.mean / static_cast<double>(d.count);
    }
    return summary;
}

std::optional<double> RoutingSummary::accuracy() const {
    int64_t count = 0, own_top = 0;
    for (const auto & [domain, d] : domains) {
        if (d.has_own) {
            count += d.count;
            own_top += d.own_top;
        }
    }
    return count > 0 ? std::optional<double>(static_cast<double>(own_top) / static_cast<double>(count)) : std::nullopt;
}

namespace {

// gate_report.json and expert_class.csv/png from the per-example weights [N, E].
void write_gate_analytics(const std::string & dir, const at::Tensor & per_example, const std::vector<std::string> & experts,
                          const std::vector<Prediction> & predictions, const std::vector<std::string> & classes) {
    nlohmann::json report = { { "experts", experts }, { "overall", to_json(gate_stats(per_example, classes), experts) } };
    std::map<std::string, std::vector<int64_t>> rows_of_domain;
    for (size_t i = 0; i < predictions.size(); ++i) {
        rows_of_domain[predictions[i].domain].push_back(static_cast<int64_t>(i));
    }
    for (const auto & [domain, rows] : rows_of_domain) {
        std::vector<std::string> domain_classes;
        for (const int64_t i : rows) {
            domain_classes.push_back(classes[static_cast<size_t>(i)]);
        }
        const at::Tensor index = at::tensor(rows, at::kLong);
        report["per_domain"][domain] = to_json(gate_stats(per_example.index_select(0, index), domain_classes), experts);
    }
    const ExpertClassTable table = expert_class_table(per_example, classes);
    report["expert_class"]       = { { "classes", table.classes }, { "counts", table.counts } };
    write_json_file((fs::path(dir) / "gate_report.json").string(), report);

    CsvRow header = { "class\\expert" };
    header.insert(header.end(), experts.begin(), experts.end());
    std::vector<CsvRow> csv;
    for (size_t c = 0; c < table.classes.size(); ++c) {
        CsvRow row = { table.classes[c] };
        for (const int64_t n : table.counts[c]) {
            row.push_back(std::to_string(n));
        }
        csv.push_back(row);
    }
    const std::string csv_path = (fs::path(dir) / "expert_class.csv").string();
    write_csv(csv_path, header, csv);
    plot_count_heatmap(csv_path, (fs::path(dir) / "expert_class.png").string(), "chosen expert", "class");
}

}  // namespace

std::vector<std::string> gate_classes(const std::vector<Prediction> & predictions, bool images) {
    std::vector<std::string> classes;
    for (const Prediction & p : predictions) {
        classes.push_back(images ? p.domain + "/" + p.target : p.domain);
    }
    return classes;
}

std::map<std::string, double> gate_figures(const GateProbe & probe, const std::vector<Prediction> & predictions, bool images) {
    const RoutingReport report = collect_routing(*probe.log, probe.modules, probe.experts);
    probe.log->batches.clear();
    const GateStats s = gate_stats(report.weights.mean(1), gate_classes(predictions, images));  // over [N, E]
    std::map<std::string, double> figures = {
        { "gate_entropy", s.mean_entropy }, { "gate_kl_to_mean", s.kl_to_mean }, { "expert_class_mi", s.expert_class_mi }
    };
    if (const std::optional<double> routing = summarize_routing(report, predictions).accuracy()) {
        figures["routing_accuracy"] = *routing;
    }
    return figures;
}

void write_routing(const std::string & dir, const RoutingReport & report, const std::vector<Prediction> & predictions,
                   const std::vector<std::string> & classes) {
    const RoutingSummary summary = summarize_routing(report, predictions);
    write_safetensors((fs::path(dir) / "gate_weights.safetensors").string(), { { "gate_weights", report.weights } },
                      { { "format", "pt" },
                        { "modules", nlohmann::json(report.modules).dump() },
                        { "experts", nlohmann::json(report.experts).dump() } });

    CsvRow header = { "domain", "count", "routing_accuracy" };
    header.insert(header.end(), report.experts.begin(), report.experts.end());
    std::vector<CsvRow> csv;
    for (const auto & [domain, d] : summary.domains) {
        CsvRow row = { domain, std::to_string(d.count),
                       d.has_own ? std::to_string(static_cast<double>(d.own_top) / static_cast<double>(d.count)) : "" };
        for (int64_t e = 0; e < d.mean.size(0); ++e) {
            row.push_back(std::to_string(d.mean[e].item<double>()));
        }
        csv.push_back(row);
    }
    const std::string csv_path = (fs::path(dir) / "routing.csv").string();
    write_csv(csv_path, header, csv);
    plot_grouped_bars(csv_path, (fs::path(dir) / "routing.png").string(), "mean gate weight per domain and expert", "gate weight",
                      4, report.experts.size());
    write_gate_analytics(dir, report.weights.mean(1), report.experts, predictions, classes);  // [N, E]
}

}  // namespace cgm
