#include "core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <ATen/ATen.h>

#include <cmath>
#include <mutex>

namespace cgm {

void seed_torch(uint64_t seed) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    {
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_current_seed(seed);
    }
    if (at::hasCUDA()) {
        at::Generator cuda = at::globalContext().defaultGenerator(c10::DeviceType::CUDA);  // a handle
        cuda.set_current_seed(seed);
    }
}

at::Tensor uniform_fan_in(const std::vector<int64_t> & shape, int64_t fan_in, at::Generator & gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return (at::rand(shape, gen) * 2.0 - 1.0) * bound;
}

}  // namespace cgm
