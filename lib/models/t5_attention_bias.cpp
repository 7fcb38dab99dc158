#include "models/t5_attention_bias.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace cgm {
namespace {

constexpr double kMasked = std::numeric_limits<float>::lowest();

// HF's _relative_position_bucket, op for op (float32 log, truncation to int64).
at::Tensor relative_position_bucket(const at::Tensor & relative_position, bool bidirectional, int64_t num_buckets,
                                    int64_t max_distance) {
    at::Tensor buckets = at::zeros_like(relative_position);
    at::Tensor rel     = relative_position;
    if (bidirectional) {
        num_buckets /= 2;
        buckets = buckets + (rel > 0).to(at::kLong) * num_buckets;
        rel     = rel.abs();
    } else {
        rel = -at::minimum(rel, at::zeros_like(rel));
    }
    const int64_t max_exact = num_buckets / 2;
    at::Tensor    is_small  = rel < max_exact;
    at::Tensor    if_large  = (at::log(rel.to(at::kFloat) / static_cast<double>(max_exact)) /
                           std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                           static_cast<double>(num_buckets - max_exact))
                              .to(at::kLong) +
                          max_exact;
    if_large = at::minimum(if_large, at::full_like(if_large, num_buckets - 1));
    return buckets + at::where(is_small, rel, if_large);
}

}  // namespace

T5AttentionBias::T5AttentionBias(const T5Config & config, const at::Tensor & table, bool bidirectional, const Shape & shape,
                                 const at::Tensor & padding_mask, bool causal)
    : table_(table), shape_(shape), causal_(causal) {
    if (table.defined()) {
        // Every relative position k - q a block can ask for, once: O(Tq + Tk), not O(Tq * Tk).
        const int64_t    lowest   = -(shape.q_offset + shape.q_len - 1);
        const at::Tensor relative = at::arange(lowest, shape.k_len, at::TensorOptions().dtype(at::kLong).device(table.device()));
        buckets_ = relative_position_bucket(relative, bidirectional, config.relative_attention_num_buckets,
                                            config.relative_attention_max_distance);
    }
    if (padding_mask.defined()) {
        const at::Tensor keep = padding_mask.to(at::kFloat).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, Tk]
        padding_              = (1.0 - keep) * kMasked;
    }
}

at::Tensor T5AttentionBias::rows(const at::Tensor & table, int64_t start, int64_t len) const {
    if (start == 0 && len == shape_.q_len && table.is_same(table_)) {
        if (!whole_->defined()) {
            *whole_ = build(table, start, len);
        }
        return *whole_;
    }
    return build(table, start, len);
}

at::Tensor T5AttentionBias::build(const at::Tensor & table, int64_t start, int64_t len) const {
    const auto       long_opts = at::TensorOptions().dtype(at::kLong).device(table_.defined() ? table_.device() : padding_.device());
    const int64_t    first     = shape_.q_offset + start;                                   // absolute position of row 0
    const at::Tensor query     = at::arange(first, first + len, long_opts).unsqueeze(1);  // [len, 1]
    const at::Tensor key       = at::arange(shape_.k_len, long_opts).unsqueeze(0);        // [1, Tk]
    at::Tensor       bias;
    if (table.defined()) {
        // Index of k - q in buckets_, whose first entry is the lowest relative position.
        const at::Tensor bucket = buckets_.take(key - query + (shape_.q_offset + shape_.q_len - 1));  // [len, Tk]
        bias = at::embedding(table, bucket).permute({ 2, 0, 1 }).unsqueeze(0).to(at::kFloat);       // [1, H, len, Tk]
    }
    if (causal_) {
        const at::Tensor future = key > query;  // [len, Tk]
        bias = bias.defined() ? bias.masked_fill(future, kMasked)
                              : at::zeros({ len, shape_.k_len }, long_opts.dtype(at::kFloat)).masked_fill(future, kMasked);
    }
    if (padding_.defined()) {
        bias = bias.defined() ? bias + padding_ : padding_;
    }
    return bias;
}

}  // namespace cgm
