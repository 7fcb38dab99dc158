#pragma once
// Process-wide runtime settings shared by every program: threads, device, dtype names.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <string>

namespace cgm {

// Sets LibTorch's intra-op threads; n <= 0 means every core (LibTorch's own default is half).
// What every program does first. (Memory comes from tcmalloc, linked into every program: see
// CMakeLists.txt.)
void set_threads(int n);

// "cpu" or "cuda[:N]"; a clear Error when the device is unknown or CUDA is not available.
c10::Device parse_device(const std::string & name);

// "f32"/"float32" or "bf16"/"bfloat16".
c10::ScalarType parse_float_dtype(const std::string & name);

// Hugging Face's name for a dtype ("float32", "bfloat16", ...), as written to config.json.
std::string hf_dtype_name(c10::ScalarType dtype);

// "LibTorch 1.13.0 (CPU)" or "LibTorch 2.5.1 (CUDA)".
std::string torch_build_summary();

}  // namespace cgm
