#pragma once
// A frozen linear layer (bias optional) with an optional adapter added to its output: the one place
// where LoRA (or a mixture of LoRA experts) enters a model.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cgm {

// What an adapter may need to know about the sequence its input x: [B, T, d_in] belongs to.
struct AdapterCall {
    bool               training = false;
    const at::Tensor * mask     = nullptr;  // [B, T] 1 = real token; nullptr: every position is real
    bool               causal   = false;    // decoder side: position t may only look at positions <= t
    int64_t            offset   = 0;        // positions of this sequence already processed (KV cache)
    at::Tensor *       state    = nullptr;  // per-module state kept across incremental decoding steps
};

// t in like's dtype (no copy when it already is): adapters keep float32 weights over a bf16 base.
inline at::Tensor cast_like(const at::Tensor & t, const at::Tensor & like) {
    return t.scalar_type() == like.scalar_type() ? t : t.to(like.scalar_type());
}

class LinearAdapter {
  public:
    virtual ~LinearAdapter() = default;
    // x: [..., d_in] -> the adapter's contribution [..., d_out]
    virtual at::Tensor delta(const at::Tensor & x, const AdapterCall & call) const = 0;
    // True when the result for one position depends on the rest of the sequence (gates that
    // average over it): such an adapter must see whole sequences, never chunks of one.
    virtual bool needs_whole_sequence() const { return false; }
};

// FLOPs the adapters of a model add per input row of the module at `path`
// ("decoder.block.0.layer.0.SelfAttention.q"), 0 where there is none: for counting model FLOPs.
using AdapterFlops = std::function<double(const std::string & path)>;

struct LinearWeights {
    at::Tensor weight;  // [d_out, d_in]
    at::Tensor bias;    // [d_out], or undefined
};

struct Linear {
    at::Tensor                     weight;  // [d_out, d_in]
    at::Tensor                     bias;    // [d_out], or undefined (T5 has none)
    std::shared_ptr<LinearAdapter> adapter;
    // PEFT's modules_to_save: a trained full copy used instead of weight and bias while attached.
    std::shared_ptr<LinearWeights> replacement;

    // x: [..., d_in] -> [..., d_out]
    at::Tensor forward(const at::Tensor & x, const AdapterCall & call) const;
};

// A linear layer under its module path ("encoder.block.0.layer.0.SelfAttention.q").
struct NamedLinear {
    std::string path;
    Linear *    linear;
};

}  // namespace cgm
