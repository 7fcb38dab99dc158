#pragma once
// Top-k sparse feed-forward activations (Gupta et al. 2021, "Memory-efficient Transformers via
// Top-k Attention"): per token, only the k largest pre-activations of the FF layer survive.
#include <ATen/core/Tensor.h>

namespace cgm {

// activations, pre_activations: [..., d_ff]. Returns activations with every entry zeroed whose
// pre-activation is not among the k largest of its row. k <= 0 or k >= d_ff: unchanged.
at::Tensor keep_topk(const at::Tensor & activations, const at::Tensor & pre_activations, int64_t k);

}  // namespace cgm
