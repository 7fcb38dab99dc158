#pragma once
// A frozen bias-free linear layer with an optional adapter added to its output: the one place
// where LoRA (or a mixture of LoRA experts) enters a model.
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace cgm {

class LinearAdapter {
  public:
    virtual ~LinearAdapter() = default;
    // x: [..., d_in] -> the adapter's contribution [..., d_out]
    virtual at::Tensor delta(const at::Tensor & x, bool training) const = 0;
};

struct Linear {
    at::Tensor                     weight;  // [d_out, d_in]
    std::shared_ptr<LinearAdapter> adapter;

    // x: [..., d_in] -> [..., d_out]
    at::Tensor forward(const at::Tensor & x, bool training) const;
};

// A linear layer under its module path ("encoder.block.0.layer.0.SelfAttention.q").
struct NamedLinear {
    std::string path;
    Linear *    linear;
};

}  // namespace cgm
