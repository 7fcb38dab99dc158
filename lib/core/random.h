#pragma once
#include <cstdint>

namespace cgm {

// Seeds LibTorch's default CPU (and CUDA, when present) generators: dropout and random inits.
void seed_torch(uint64_t seed);

}  // namespace cgm
