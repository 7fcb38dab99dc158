#pragma once
// T5's additive attention bias (relative positions, padding, causality) for any block of query
// rows, built when asked: with query chunking no [Tq, Tk] object outlives its block of rows.
#include "models/t5_config.h"

#include <ATen/core/Tensor.h>

#include <memory>

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

    // [B|1, H|1, len, Tk] float32 for query rows [start, start + len). `table` stands for the table
    // given to the constructor (a detached copy when a backward pass recomputes a block), so its
    // gradient flows through the result.
    at::Tensor rows(const at::Tensor & table, int64_t start, int64_t len) const;
    const at::Tensor & table() const { return table_; }
    int64_t            q_len() const { return shape_.q_len; }

  private:
    at::Tensor table_;
    Shape      shape_;
    bool       causal_;
    at::Tensor buckets_;  // [q_len + k_len - 1 + q_offset] bucket of each relative position k - q, smallest first
    at::Tensor padding_;  // [B, 1, 1, Tk] 0 or float min; undefined: no padding
    std::shared_ptr<at::Tensor> whole_ = std::make_shared<at::Tensor>();  // all rows from table_, built once for every layer

    at::Tensor build(const at::Tensor & table, int64_t start, int64_t len) const;
};

}  // namespace cgm
