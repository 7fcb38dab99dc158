#pragma once
// Model FLOPs of T5 work: 2 per multiply-add of every matrix product (the projections, attention
// scores and mixing, feed-forward, LM head, and what adapters add); norms, softmax, activations
// and the loss are left out, as in the usual model-FLOPs-utilisation count. What a benchmark
// divides by its time to give GFLOP/s, so that a figure travels between machines.
#include "models/linear.h"
#include "models/t5_config.h"

namespace cgm {

// One teacher-forced forward pass: encoder over [batch, source], decoder over [batch, target].
double t5_forward_flops(const T5Config & config, int64_t batch, int64_t source, int64_t target,
                        const AdapterFlops & adapter = {});

// Greedy decoding of `steps` tokens with the KV cache: the encoder once, then one position per step,
// attending to the positions cached so far and to the source (cross keys/values computed once).
double t5_greedy_flops(const T5Config & config, int64_t batch, int64_t source, int64_t steps,
                       const AdapterFlops & adapter = {});

// A training step that updates only the adapters (LoRA, gates): the forward, the backward's input
// gradients (as many FLOPs as the forward) and the adapters' weight gradients (as many as their
// forward). A few products of the first layers whose inputs need no gradient are counted anyway.
double t5_adapter_train_step_flops(const T5Config & config, int64_t batch, int64_t source, int64_t target,
                                   const AdapterFlops & adapter);

}  // namespace cgm
