#pragma once
// How a gate spreads its weight, as the gated modular MoE seed logs it: entropies, each expert's
// mean and variance, the importance CV, KL(p || mean p) and the mutual information between the
// chosen expert and the class (from the class x expert count table). Logs are natural (nats).
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct GateStats {
    int64_t             count = 0;
    double              mean_entropy    = 0;  // mean over examples of H(p_n)
    double              entropy_of_mean = 0;  // H(mean_n p_n)
    std::vector<double> mean, variance;       // [E]: each expert's weight over the examples (population variance)
    double              cv = 0;               // std / mean of the importance sum_n p_n (std over experts, E - 1, as the seed's torch.std)
    double              kl_to_mean = 0;       // mean_n KL(p_n || mean p): the mutual information between example and expert
    double              expert_class_mi = 0;  // I(argmax expert; class) from the count table
};

// p: [N, E] per-example expert weights (rows sum to 1); classes: N class keys. Ties in the argmax
// go to the first expert.
GateStats gate_stats(const at::Tensor & p, const std::vector<std::string> & classes);

// The count table behind expert_class_mi: rows the distinct classes (sorted), columns the experts.
struct ExpertClassTable {
    std::vector<std::string>          classes;
    std::vector<std::vector<int64_t>> counts;  // [classes][E]
};
ExpertClassTable expert_class_table(const at::Tensor & p, const std::vector<std::string> & classes);

nlohmann::json to_json(const GateStats & stats, const std::vector<std::string> & experts);

}  // namespace cgm
