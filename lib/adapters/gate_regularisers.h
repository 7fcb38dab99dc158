#pragma once
// The gated modular MoE seed's training penalties on gate probabilities p: [B, E] (one row per
// example), each a scalar float32 tensor that gradients flow through, and its temperature schedule.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace cgm {

// Weights of the penalties added to the training loss (0: off).
struct GateRegularisers {
    double importance      = 0;  // w (std(I) / mean(I))^2, I = the batch's summed gate probabilities
    double sample_sim_same = 0;  // pull examples that are close in feature space onto the same expert
    double sample_sim_diff = 0;  // push examples that are far apart onto different experts
    double ideal_gate      = 0;  // w MSE(p, one-hot of the expert with the lowest loss)
    double entropy         = 0;  // w mean per-example entropy of p (sharper gates)

    bool any() const { return importance != 0 || sample_sim_same != 0 || sample_sim_diff != 0 || ideal_gate != 0 || entropy != 0; }
};

// Shazeer et al.'s importance loss: (std(I) / mean(I))^2 with I = sum_n p_n [E], std unbiased.
at::Tensor importance_cv2(const at::Tensor & p);

// The seed's sample-similarity penalty, with D the pairwise Euclidean distances of `features`
// [B, F] scaled by their maximum:
//   same sum_{n,m} sum_i p_i(n) p_i(m) D_nm / E  -  diff sum_{n,m} sum_{i!=j} p_i(n) p_j(m) D_nm / (E^2 - E) / B^2
// (the seed's operator precedence: 1/B^2 on the second term only).
at::Tensor sample_similarity(const at::Tensor & p, const at::Tensor & features, double same, double diff);

// MSE(p, one_hot(argmin_e nll_e)) over all B x E entries; nll: [E, B] each expert's loss per example.
at::Tensor ideal_gate_mse(const at::Tensor & p, const at::Tensor & nll);

// mean_n -sum_i p_i log p_i (0 log 0 = 0).
at::Tensor mean_entropy(const at::Tensor & p);

// The weighted sum of the penalties `w` asks for; features and nll may be undefined when their
// weights are 0.
at::Tensor gate_penalty(const GateRegularisers & w, const at::Tensor & p, const at::Tensor & features, const at::Tensor & nll);

// The seed's per-epoch schedule (epochs from 0): T_{e+1} = max(0.001, T_e / (1 + decay (e - start)))
// for e > start, so the first change is at epoch start + 2; the temperature at the start of
// `epoch` (decay 0: always t0).
double decayed_temperature(double t0, double decay, int64_t start, int64_t epoch);

}  // namespace cgm
