// main() of the Google Benchmark binaries: --threads N (ours, default every core) is taken out
// before Google Benchmark reads its own flags; the LibTorch build, the thread count and this
// machine's float32 and bfloat16 GEMM peaks (measured now, with those threads) are reported.
#include "flop_counters.h"
#include "core/runtime.h"
#include "perf/gemm_peak.h"

#include <ATen/Parallel.h>

#include <cstring>
#include <map>
#include <string>

namespace cgm {

namespace {

std::map<c10::ScalarType, double> & gemm_peaks() {  // GFLOP/s by dtype
    static std::map<c10::ScalarType, double> peaks;
    return peaks;
}

}  // namespace

void set_flop_counters(benchmark::State & state, double flops_per_iteration, c10::ScalarType dtype) {
    const double gflop = flops_per_iteration / 1e9;
    state.counters["GFLOP"]    = gflop;
    state.counters["GFLOP/s"]  = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["fraction_of_peak"] =
        benchmark::Counter(gflop / gemm_peaks().at(dtype), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace cgm

int main(int argc, char ** argv) {
    int threads = 0;
    int kept    = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    cgm::set_threads(threads);
    benchmark::AddCustomContext("threads", std::to_string(at::get_num_threads()));
    benchmark::AddCustomContext("torch", cgm::torch_build_summary());
    for (const c10::ScalarType dtype : { c10::kFloat, c10::kBFloat16 }) {
        const double peak            = cgm::measure_gemm_peak_gflops(dtype);
        cgm::gemm_peaks()[dtype]     = peak;
        benchmark::AddCustomContext(std::string("gemm_peak_gflops_") + (dtype == c10::kFloat ? "f32" : "bf16"),
                                    std::to_string(peak));
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
