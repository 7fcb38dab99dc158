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

std::vector<at::Tensor> T5AttentionBias::rows(const at::Tensor & table, int64_t start, int64_t len) const {
    std::vector<at::Tensor> terms;
    if (table.defined()) {
        // values[h, m]: head h's bias for relative position k - q = m + lowest, lowest being
        // -(q_offset + q_len - 1). Row r of the block is query q = q_offset + start + len - 1 - r,
        // so key k reads m = k + r + (q_len - start - len): stride 1 along r and along k.
        const int64_t    heads  = table.size(1), positions = buckets_.size(0);
        const at::Tensor values = at::embedding(table, buckets_).t().to(at::kFloat).contiguous();  // [H, R]
        terms.push_back(values.as_strided({ 1, heads, len, shape_.k_len }, { heads * positions, positions, 1, 1 },
                                          values.storage_offset() + shape_.q_len - start - len));  // [1, H, len, Tk]
    }
    if (causal_) {
        const auto       long_opts = at::TensorOptions().dtype(at::kLong).device(table_.defined() ? table_.device() : padding_.device());
        const int64_t    last      = shape_.q_offset + start + len - 1;                              // row 0's query
        const at::Tensor query     = at::arange(last, last - len, -1, long_opts).unsqueeze(1);       // [len, 1]
        const at::Tensor key       = at::arange(shape_.k_len, long_opts).unsqueeze(0);              // [1, Tk]
        terms.push_back(at::zeros({ len, shape_.k_len }, long_opts.dtype(at::kFloat)).masked_fill(key > query, kMasked));
    }
    if (padding_.defined()) {
        terms.push_back(padding_);
    }
    return terms;
}

}  // namespace cgm
