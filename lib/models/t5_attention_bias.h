#pragma once
// T5's additive attention bias (relative positions, padding, causality) for any block of query
// rows, built when asked: with query chunking no [Tq, Tk] object outlives its block of rows, and
// the relative-position term is never built at all: a block's rows, taken last first, are a
// strided view of one row of values per head (the value of relative position k - q).
#include "models/t5_config.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace cgm {

class T5AttentionBias {
  public:
    struct Shape {
        int64_t q_offset = 0;  // absolute position of query row 0 (cached decoding)
        int64_t q_len    = 0;
        int64_t k_len    = 0;
    };
    // table: [buckets, H] relative-position embedding (undefined: none, as in cross-attention);
    // padding_mask: [B, Tk] with 1 for real keys (undefined: all real); causal: query position p
    // sees keys 0..p only.
    T5AttentionBias(const T5Config & config, const at::Tensor & table, bool bidirectional, const Shape & shape,
                    const at::Tensor & padding_mask, bool causal);

    // The terms of query rows [start, start + len), last row first, each broadcastable to
    // [B, H, len, Tk] float32 (chunked_attention.h's BiasRows). `table` stands for the table given
    // to the constructor (a detached copy when a backward pass recomputes a block), so its
    // gradient flows through the result.
    std::vector<at::Tensor> rows(const at::Tensor & table, int64_t start, int64_t len) const;
    const at::Tensor &      table() const { return table_; }

  private:
    at::Tensor table_;
    Shape      shape_;
    bool       causal_;
    at::Tensor buckets_;  // [q_offset + q_len - 1 + k_len]: the bucket of each relative position k - q, smallest first
    at::Tensor padding_;  // [B, 1, 1, Tk] 0 or float min; undefined: no padding
};

}  // namespace cgm
