#pragma once
// Where a trained gate sends each example: gate_weights.safetensors ([examples, modules,
// experts], like X-LoRA's scalings log), routing.csv (mean weight per domain and expert, and how
// often a domain's own expert, the one named like it, gets the largest weight) and routing.png.
#include "adapters/lora_mixture.h"
#include "eval/t5_predict.h"

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

void write_routing(const std::string & dir, const RoutingReport & report, const std::vector<Prediction> & predictions);

}  // namespace cgm
