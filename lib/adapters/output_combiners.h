#pragma once
// How an output-level mixture combines its experts' outputs (the gated modular MoE seed). Expert
// logits z: [E, B, ..., C] (class logits, or a decoder's logits per position), gate probabilities
// p: [B, E]; labels [B, ...] int64 with -100 ignored. Each combiner returns what serves as the
// mixture's logits [B, ..., C]: cross-entropy on them is the mixture's negative log-likelihood.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace cgm {

enum class Combiner { expectation, pre_softmax, top_k, stochastic, loss_gate };
Combiner    parse_combiner(const std::string & name);  // "expectation" | "pre-softmax" | "top-k" | "stochastic" | "loss-gate"
std::string combiner_name(Combiner c);

// softmax(logits / T), or the escort transform (x_j^2 / sum_k x_k^2 of x = logits / T).
enum class GateTransform { softmax, escort };
at::Tensor gate_probabilities(const at::Tensor & logits, double temperature, GateTransform transform);

// log sum_e p_e softmax(z_e): the log of the expected distribution.
at::Tensor expectation_log_probs(const at::Tensor & z, const at::Tensor & p);
// sum_e p_e z_e: mixed before the softmax.
at::Tensor pre_softmax_logits(const at::Tensor & z, const at::Tensor & p);
// p with all but each row's k largest entries zeroed, renormalised to sum to 1.
at::Tensor top_k_renormalised(const at::Tensor & p, int64_t k);
// The seed's top-1 in training: p_e softmax(z_e) of each example's argmax expert e, used as
// logits, so that the gate's weight on the chosen expert gets a gradient.
at::Tensor top_1_scaled_probs(const at::Tensor & z, const at::Tensor & p);
// z of expert[b] for each example b: expert [B] int64 -> [B, ..., C].
at::Tensor select_expert(const at::Tensor & z, const at::Tensor & expert);

// Cross-entropy of logits [B, ..., C] against labels [B, ...] over the labels that are not -100.
at::Tensor mixture_nll(const at::Tensor & logits, const at::Tensor & labels);
// Each expert's per-example loss: mean over the example's labelled positions -> [E, B].
at::Tensor expert_nll(const at::Tensor & z, const at::Tensor & labels);
// Jacobs et al. (1991), the seed's stochastic MoE loss: -mean_n log(sum_i p_i exp(-nll_i / 2) + 1e-15).
at::Tensor jacobs_loss(const at::Tensor & p, const at::Tensor & nll);
// The loss-gate's regression: sum_i mean_n |s_i - log-likelihood_i| of the gate's logits s [B, E]
// toward each expert's (detached) per-example log-likelihood -nll [E, B].
at::Tensor loss_gate_regression(const at::Tensor & gate_logits, const at::Tensor & nll);

}  // namespace cgm
