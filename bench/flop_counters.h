#pragma once
// What every benchmark reports besides its time, so that a figure travels between machines: the
// model FLOPs of one iteration, the GFLOP/s reached, and that as a fraction of this machine's GEMM
// peak in the iteration's dtype, measured at start-up in the same run (bench_main.cpp).
#include <benchmark/benchmark.h>
#include <c10/core/ScalarType.h>

namespace cgm {

void set_flop_counters(benchmark::State & state, double flops_per_iteration, c10::ScalarType dtype);

}  // namespace cgm
