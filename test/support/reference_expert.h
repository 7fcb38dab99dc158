#pragma once
// One LoRA expert on one module, and its contribution computed the plain way in float64: the
// reference the gate tests compare the stacked mixtures against.
#include <ATen/core/Tensor.h>

namespace cgm::test {

// delta = s * B A x
struct ExpertWeights {
    at::Tensor A;  // [r, d_in]
    at::Tensor B;  // [d_out, r]
    double     s = 1.0;
};

// s B A x in float64. x: [..., d_in] -> [..., d_out]
at::Tensor reference_expert(const at::Tensor & x, const ExpertWeights & e);

}  // namespace cgm::test
