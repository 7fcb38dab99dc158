#pragma once
// Training-time dropout: each element zeroed with probability p, the others scaled by 1/(1-p)
// (at::dropout's semantics and autograd graph, x * noise). On the CPU the mask comes from a
// counter-based Philox4x32-10 stream drawn in parallel (AVX-512 where the CPU has it): ATen's CPU
// bernoulli_ is serial at about 5 ns an element, a sixth of a t5-small training step on 2 cores.
// The stream's key is one draw of the default CPU generator, so at::manual_seed fixes the masks,
// and element i's bit depends on i alone: the same mask for any thread count.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace cgm {

at::Tensor dropout(const at::Tensor & x, double p);

// Philox4x32-10 (Salmon et al. 2011; Random123's philox4x32 with 10 rounds): the four words of
// counter block `counter` (words 0-1; words 2-3 are 0) under `key`.
std::array<uint32_t, 4> philox4x32_10(uint64_t counter, uint64_t key);

// Where element i's word comes from: elements go in groups of 64 filled by 16 consecutive counter
// blocks, element 64g + 16j + l taking word j of block 16g + l (the order a 16-lane vector keeps).
inline uint32_t dropout_word(uint64_t i, uint64_t key) {
    const uint64_t g = i / 64, j = (i % 64) / 16, l = i % 16;
    return philox4x32_10(16 * g + l, key)[j];
}

// An element is dropped when its word is below round(p * 2^32).
uint32_t dropout_threshold(double p);

}  // namespace cgm
