// main() of the Google Benchmark binaries: --threads N (ours, default every core) is taken out
// before Google Benchmark reads its own flags; the LibTorch build, the thread count and this
// machine's float32 and bfloat16 GEMM peaks (measured now, with those threads) are reported.
// Started by a launcher (scripts/launch, torchrun), the processes join one run (dist/world.h),
// share the cores, and rank 0 alone reports.
#include "flop_counters.h"
#include "core/runtime.h"
#include "dist/world.h"
#include "perf/gemm_peak.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <map>
#include <string>

namespace cgm {

namespace {

std::map<c10::ScalarType, double> & gemm_peaks() {  // GFLOP/s by dtype
    static std::map<c10::ScalarType, double> peaks;
    return peaks;
}

// What ranks other than 0 report: nothing.
class SilentReporter : public benchmark::BenchmarkReporter {
  public:
    bool ReportContext(const Context &) override { return true; }
    void ReportRuns(const std::vector<Run> &) override {}
};

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
    const cgm::WorldEnv world = cgm::read_world_env();
    if (world.rank != 0) {  // rank 0 alone reports, also to a --benchmark_out file
        kept = 1;
        for (int i = 1; i < argc; ++i) {
            if (std::strncmp(argv[i], "--benchmark_out", 15) != 0) {
                argv[kept++] = argv[i];
            }
        }
        argc = kept;
    }
    const int           cores = static_cast<int>(std::thread::hardware_concurrency());
    cgm::set_threads(threads > 0 ? threads : std::max(1, cores / world.local_size));
    cgm::dist::init(world, std::chrono::minutes(10), c10::Device(c10::kCPU));
    benchmark::AddCustomContext("processes", std::to_string(world.size));
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
    cgm::SilentReporter silent;
    if (cgm::dist::is_main()) {
        benchmark::RunSpecifiedBenchmarks();
    } else {
        benchmark::RunSpecifiedBenchmarks(&silent);
    }
    benchmark::Shutdown();
    return 0;
}
