#include "core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

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

}  // namespace cgm
