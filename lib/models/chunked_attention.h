#pragma once
// Attention over blocks of query rows, so that scores, softmax and bias exist for one block at a
// time ([B, H, C, Tk]), optionally keeping only the k largest scores per query (Gupta et al. 2021,
// "Memory-efficient Transformers via Top-k Attention"). With autograd on, the backward pass
// recomputes each block (dropout masks replayed from the saved generator state), so training keeps
// O(Tq * dk) per layer instead of O(Tq * Tk).
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace cgm {

struct AttentionPlan {
    int64_t q_chunk = 0;  // query rows per block (0: all at once)
    int64_t topk    = 0;  // keys kept per query, by score with bias (0, or >= Tk: all)
    double  dropout = 0;  // on the attention probabilities (training)
};

// The additive float32 bias of query rows [start, start + len), last row first, as terms each
// broadcastable to [B, H, len, Tk] (none: no bias). Last row first, because T5's relative-position
// term is then a view of one row of values per head with stride +1 along both axes: nothing of
// size [len, Tk] is built. `table` is the `table` given to attend() (or a stand-in for it when a
// block is recomputed): the bias must reach it only through that argument for its gradient to flow.
using BiasRows = std::function<std::vector<at::Tensor>(const at::Tensor & table, int64_t start, int64_t len)>;

// q: [B, H, Tq, dk], k, v: [B, H, Tk, dk] -> [B, H, Tq, dk]. No 1/sqrt(dk) scaling (T5's).
at::Tensor attend(const at::Tensor & q, const at::Tensor & k, const at::Tensor & v, const at::Tensor & table,
                  const BiasRows & bias, const AttentionPlan & plan);

}  // namespace cgm
