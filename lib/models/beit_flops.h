#pragma once
// Model FLOPs of BEiT work, counted as for T5 (t5_flops.h): 2 per multiply-add of every matrix
// product (the patch embedding, projections, attention scores and mixing, feed-forward, classifier,
// and what adapters add); norms, softmax, activations, the position bias and the loss are left out.
#include "models/beit_config.h"
#include "models/linear.h"

namespace cgm {

// One forward pass over [batch, C, image, image]: the patch embedding as the product it is (each
// of the N patches, C P P values, times [C P P, D]), every linear over the 1 + N tokens, the
// attention products over (1 + N)^2 pairs per layer, and the classifier on the pooled [batch, D].
double beit_forward_flops(const BeitConfig & config, int64_t batch, const AdapterFlops & adapter = {});

// A training step that updates only the adapters (LoRA), counted as for T5: the forward, the
// backward's input gradients (as many FLOPs as the forward) and the adapters' weight gradients (as
// many as their forward). What it executes differs (BEiT-base: 0.6% more): the patch embedding and the first
// layer's query, key and value need no input gradient but are counted; the attention products'
// backward is two products for each of the forward's but counted as one; a classifier trained in
// full (modules_to_save) computes its weight gradient, 2 batch D labels, not counted.
double beit_adapter_train_step_flops(const BeitConfig & config, int64_t batch, const AdapterFlops & adapter);

}  // namespace cgm
