// main() of the Google Benchmark binaries: --threads N (ours, default every core) is taken out
// before Google Benchmark reads its own flags; the LibTorch build and thread count are reported.
#include "core/runtime.h"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

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
    cgm::init_runtime(threads);
    benchmark::AddCustomContext("threads", std::to_string(at::get_num_threads()));
    benchmark::AddCustomContext("torch", cgm::torch_build_summary());
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
