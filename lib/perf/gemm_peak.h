#pragma once
// This machine's GEMM roof: what a model's matrix products could reach at most, measured in the
// same run as the benchmark it is compared with (machines here differ in speed by up to a third,
// so a time alone does not travel; a fraction of this peak does).
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace cgm {

// The best GFLOP/s of square matrix products (1024 and 2048) in `dtype` on `device` with the current
// thread count, each size repeated for about budget_s / 2 seconds after a warm-up.
double measure_gemm_peak_gflops(c10::ScalarType dtype, c10::Device device = c10::kCPU, double budget_s = 1.0);

}  // namespace cgm
