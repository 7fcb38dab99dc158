// Data-parallel training on this machine's processes: one training step of a random
// t5-small-sized model (batch 8 per process, source 128, target 8) with LoRA r 8 on q,v or with
// every weight trained, and the bare all-reduce of that many gradient bytes. Run it on as many
// processes as the training would use:
//
//   scripts/launch 2 -- build-bench/bin/bench-data-parallel --benchmark_repetitions=5
//
// Counters: allreduce_wait_ms (the step's time waiting for the gradient sum after its backward:
// what overlap did not hide), MB_reduced (gradient bytes each process sends into the all-reduce per
// step), bus_GB/s (the ring all-reduce's 2(n-1)/n x bytes per second) and, per process, the
// step's model FLOPs, GFLOP/s and fraction of the GEMM peak (flop_counters.h). Iterations are fixed:
// every rank must run the same collectives.
#include "flop_counters.h"

#include "adapters/lora.h"
#include "dist/world.h"
#include "models/t5.h"
#include "models/t5_flops.h"
#include "train/adamw.h"
#include "train/gradient_sync.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <chrono>

using namespace cgm;

namespace {

constexpr int64_t kBatch = 8, kSource = 128, kTarget = 8;

T5Model t5_small() {
    const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                    { "num_layers", 6 },     { "num_heads", 8 }, { "feed_forward_proj", "relu" },
                                    { "dropout_rate", 0.0 } };
    return T5Model::random(T5Config::from_json(config, "t5-small"), 0, at::kFloat);
}

int64_t bytes_of(const std::vector<at::Tensor> & params) {
    int64_t n = 0;
    for (const auto & p : params) {
        n += p.numel() * static_cast<int64_t>(p.element_size());
    }
    return n;
}

// One step: forward with loss, backward with the gradient all-reduce overlapping it, AdamW.
void run_steps(benchmark::State & state, T5Model & model, const std::vector<at::Tensor> & params, double flops) {
    AdamW            optimizer(params, AdamWOptions{});
    GradientSync     sync(params);
    const at::Tensor ids    = at::randint(3, 32000, { kBatch, kSource }, at::kLong);
    const at::Tensor mask   = at::ones({ kBatch, kSource }, at::kLong);
    const at::Tensor labels = at::randint(3, 32000, { kBatch, kTarget }, at::kLong);
    model.set_training(true);
    double waited = 0;
    for (auto _ : state) {
        sync.arm();
        const at::Tensor loss = model.forward(ids, mask, {}, labels).loss;
        loss.backward();
        const auto started = std::chrono::steady_clock::now();
        sync.finish({});
        waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        optimizer.step(1e-4);
        optimizer.zero_grad();
    }
    state.counters["allreduce_wait_ms"] = 1e3 * waited / static_cast<double>(state.iterations());
    state.counters["MB_reduced"]        = static_cast<double>(bytes_of(params)) / 1e6;
    state.counters["processes"]         = dist::size();
    set_flop_counters(state, flops, at::kFloat);
}

void BM_LoraStep(benchmark::State & state) {
    T5Model           model   = t5_small();
    const LoraAdapter adapter = create_lora(model.linear_modules(), LoraConfig{}, 0);
    attach_lora(model.linear_modules(), adapter);
    const AdapterFlops flops = [&](const std::string & path) { return adapter.flops_per_row(path); };
    run_steps(state, model, adapter.parameters(),
              t5_adapter_train_step_flops(model.config(), kBatch, kSource, kTarget, flops));
}

// Every weight trained: the forward, the input gradients and the weight gradients, 3 forwards.
void BM_FullStep(benchmark::State & state) {
    T5Model                 model = t5_small();
    std::vector<at::Tensor> params;
    for (auto & [name, t] : model.named_parameters()) {
        params.push_back(t.requires_grad_(true));
    }
    run_steps(state, model, params, 3 * t5_forward_flops(model.config(), kBatch, kSource, kTarget));
}

// The all-reduce alone, of state.range(0) float32 values.
void BM_AllReduce(benchmark::State & state) {
    at::Tensor grads = at::ones({ state.range(0) }, at::kFloat);
    for (auto _ : state) {
        dist::sum(grads);
    }
    const double bytes  = static_cast<double>(grads.nbytes());
    const double n      = dist::size();
    state.counters["MB_reduced"] = bytes / 1e6;
    state.counters["bus_GB/s"] =
        benchmark::Counter(2.0 * (n - 1.0) / n * bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_LoraStep)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FullStep)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
// LoRA r 8 on q,v of t5-small (294,912 values) and every weight of it (60,506,624).
BENCHMARK(BM_AllReduce)->Arg(294912)->Arg(60506624)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
