#pragma once
// Where a trained gate sends each example: gate_weights.safetensors ([examples, modules,
// experts], like X-LoRA's scalings log), routing.csv (mean weight per domain and expert, and how
// often a domain's own expert, the one named like it, gets the largest weight) and routing.png.
#include "adapters/lora_mixture.h"
#include "eval/t5_predict.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct RoutingReport {
    std::vector<std::string> modules;  // gated modules, in model order
    std::vector<std::string> experts;
    at::Tensor               weights;  // [examples, modules, experts] float32
};

// Gathers the per-module rows of `log` (one per example, in order).
RoutingReport collect_routing(const GateLog & log, const std::vector<std::string> & modules,
                              const std::vector<std::string> & experts);

// Per domain: its examples, how often the expert named like the domain has the largest weight
// (averaged over modules), and the mean weight of each expert.
struct DomainRouting {
    int64_t    count   = 0;
    int64_t    own_top = 0;
    bool       has_own = false;  // an expert is named like the domain
    at::Tensor mean;             // [E]
};
struct RoutingSummary {
    std::map<std::string, DomainRouting> domains;
    // Own expert on top, over the examples of domains that have one (none: nullopt).
    std::optional<double> accuracy() const;
};
RoutingSummary summarize_routing(const RoutingReport & report, const std::vector<Prediction> & predictions);

// The class key of each prediction for the gate analytics: "domain/true class" for images, the
// domain for questions (whose answers are no classes).
std::vector<std::string> gate_classes(const std::vector<Prediction> & predictions, bool images);

// A gate to report on during training: its log and what the log's rows are.
struct GateProbe {
    GateLog *                log = nullptr;
    std::vector<std::string> modules, experts;
};
// The figures a validation pass reports of a gate (metrics.csv's val_<name> columns):
// routing_accuracy (when a domain has its own expert), gate_entropy, gate_kl_to_mean and
// expert_class_mi (gate_analytics.h). Empties the log.
std::map<std::string, double> gate_figures(const GateProbe & probe, const std::vector<Prediction> & predictions, bool images);

// gate_weights.safetensors, routing.csv/png, and the gate analytics (gate_analytics.h) over the
// module-averaged weights: gate_report.json (overall and per domain) and expert_class.csv/png
// (class x chosen expert counts). `classes` gives each prediction's class key (gate_classes).
void write_routing(const std::string & dir, const RoutingReport & report, const std::vector<Prediction> & predictions,
                   const std::vector<std::string> & classes);

}  // namespace cgm
