#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace cgm {

// Seeds LibTorch's default CPU (and CUDA, when present) generators: dropout and random inits.
void seed_torch(uint64_t seed);

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) float32: PyTorch's nn.Linear init of weight and bias, and
// kaiming_uniform_(a=sqrt(5)), which PEFT uses for lora_A.
at::Tensor uniform_fan_in(const std::vector<int64_t> & shape, int64_t fan_in, at::Generator & gen);

}  // namespace cgm
