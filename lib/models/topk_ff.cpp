#include "models/topk_ff.h"

#include <ATen/ops/mul.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros_like.h>

namespace cgm {

at::Tensor keep_topk(const at::Tensor & activations, const at::Tensor & pre_activations, int64_t k) {
    if (k <= 0 || k >= pre_activations.size(-1)) {
        return activations;
    }
    // Selection by raw value (before the activation), ties broken by the topk kernel.
    const at::Tensor top  = std::get<1>(at::topk(pre_activations, k, -1, /*largest=*/true, /*sorted=*/false));
    const at::Tensor keep = at::zeros_like(activations).scatter_(-1, top, 1.0);  // [..., d_ff] 0/1
    return at::mul(activations, keep);
}

}  // namespace cgm
