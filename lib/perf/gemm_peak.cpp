#include "perf/gemm_peak.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>

namespace cgm {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for the device's queued work (reading one element synchronises a CUDA stream).
void finish(const at::Tensor & t) {
    t.flatten()[0].item<float>();
}

double best_seconds_per_product(int64_t n, c10::ScalarType dtype, c10::Device device, double budget_s) {
    const auto       options = at::TensorOptions().dtype(dtype).device(device);
    const at::Tensor a = at::randn({ n, n }, options), b = at::randn({ n, n }, options);
    at::Tensor       c = at::mm(a, b);  // warm-up: packing buffers, kernels, clocks
    finish(c);
    double      best  = 1e30;
    const auto  start = Clock::now();
    for (int rep = 0; rep < 3 || std::chrono::duration<double>(Clock::now() - start).count() < budget_s; ++rep) {
        const auto t0 = Clock::now();
        at::mm_out(c, a, b);
        finish(c);
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
}

}  // namespace

double measure_gemm_peak_gflops(c10::ScalarType dtype, c10::Device device, double budget_s) {
    c10::NoGradGuard no_grad;
    double           peak = 0.0;
    for (const int64_t n : { 1024, 2048 }) {
        const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
        peak = std::max(peak, flops / best_seconds_per_product(n, dtype, device, budget_s / 2.0) / 1e9);
    }
    return peak;
}

}  // namespace cgm
