#include "core/runtime.h"

#include "core/error.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <thread>

namespace cgm {

void set_threads(int n) {
    if (n <= 0) {
        n = static_cast<int>(std::thread::hardware_concurrency());
    }
    at::set_num_threads(n > 0 ? n : 1);
}

c10::Device parse_device(const std::string & name) {
    if (name == "cpu") {
        return c10::Device(c10::kCPU);
    }
    if (name.rfind("cuda", 0) != 0) {
        fail("--device", "unknown device '" + name + "' (expected cpu or cuda[:N])");
    }
    if (!at::hasCUDA()) {
        fail("--device", "'" + name + "' requested but CUDA is not available (" + torch_build_summary() +
                             ", or no GPU/driver on this machine)");
    }
    try {
        return c10::Device(name);
    } catch (const std::exception &) {
        fail("--device", "malformed device '" + name + "' (expected cpu or cuda[:N])");
    }
}

c10::ScalarType parse_float_dtype(const std::string & name) {
    if (name == "f32" || name == "float32") {
        return c10::kFloat;
    }
    if (name == "bf16" || name == "bfloat16") {
        return c10::kBFloat16;
    }
    fail("--dtype", "unknown dtype '" + name + "' (expected f32 or bf16)");
}

std::string hf_dtype_name(c10::ScalarType dtype) {
    switch (dtype) {
        case c10::kFloat: return "float32";
        case c10::kBFloat16: return "bfloat16";
        case c10::kHalf: return "float16";
        case c10::kDouble: return "float64";
        default: return c10::toString(dtype);
    }
}

std::string torch_build_summary() {
    return std::string("LibTorch ") + TORCH_VERSION + (at::hasCUDA() ? " (CUDA)" : " (CPU only)");
}

}  // namespace cgm
