// T5 forward, greedy decoding and a LoRA training step on a random t5-small-sized model (d_model 512, d_ff 2048,
// 8 heads x 64, 6+6 layers, vocab 32128) with LoRA r 8 on q,v (not merged), batch 8, source 128, target 8:
// the peer's setting (scripts/peer-bench runs PEFT on it). Each reports its model FLOPs, GFLOP/s and
// fraction of this machine's GEMM peak (flop_counters.h).
//
//   bench-t5 [--threads N] [Google Benchmark flags, e.g. --benchmark_repetitions=7]
#include "flop_counters.h"

#include "adapters/lora.h"
#include "models/t5.h"
#include "models/t5_flops.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

using namespace cgm;

namespace {

constexpr int64_t kBatch = 8, kSource = 128, kTarget = 8;

T5Config t5_small_config(double dropout) {
    const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                    { "num_layers", 6 },     { "num_heads", 8 }, { "feed_forward_proj", "relu" },
                                    { "dropout_rate", dropout } };
    return T5Config::from_json(config, "t5-small");
}

// t5-small with LoRA r 8 on q,v (B = 0: the costs do not depend on the values).
struct LoraT5 {
    T5Model     model;
    LoraAdapter adapter;

    explicit LoraT5(c10::ScalarType dtype)
        : model(T5Model::random(t5_small_config(0.1), 0, dtype)),
          adapter(create_lora(model.linear_modules(), LoraConfig{}, 0)) {
        attach_lora(model.linear_modules(), adapter);
    }
    double forward_flops() const {
        return t5_forward_flops(model.config(), kBatch, kSource, kTarget, lora_flops());
    }
    AdapterFlops lora_flops() const {
        return [this](const std::string & path) { return adapter.flops_per_row(path); };
    }
};

// One model per dtype, shared by the inference benchmarks.
const LoraT5 & t5_small(c10::ScalarType dtype) {
    static std::map<c10::ScalarType, std::unique_ptr<LoraT5>> models;
    std::unique_ptr<LoraT5> & m = models[dtype];
    if (!m) {
        m = std::make_unique<LoraT5>(dtype);
        // A zero EOS embedding gives EOS logit 0 while 32k random logits are spread around it, so
        // greedy decoding runs all 8 steps (the "steps" counter shows it).
        m->model.named_parameters().front().second[1].zero_();
    }
    return *m;
}

at::Tensor random_ids(int64_t t) {
    return at::randint(3, 32000, { kBatch, t }, at::kLong);
}

c10::ScalarType dtype_arg(const benchmark::State & state) {
    return state.range(0) == 16 ? at::kBFloat16 : at::kFloat;
}

void BM_T5Forward(benchmark::State & state) {
    const LoraT5 &     t5 = t5_small(dtype_arg(state));
    const at::Tensor   ids = random_ids(kSource), mask = at::ones({ kBatch, kSource }, at::kLong);
    const at::Tensor   labels = random_ids(kTarget);
    c10::InferenceMode no_autograd;
    for (auto _ : state) {
        benchmark::DoNotOptimize(t5.model.forward(ids, mask, {}, labels).loss.item<float>());
    }
    set_flop_counters(state, t5.forward_flops(), dtype_arg(state));
}

void BM_T5Generate8(benchmark::State & state) {
    const LoraT5 &   t5 = t5_small(dtype_arg(state));
    const at::Tensor ids = random_ids(kSource), mask = at::ones({ kBatch, kSource }, at::kLong);
    int64_t          steps = 0;
    for (auto _ : state) {
        steps = t5.model.generate(ids, mask, kTarget).ids.size(1) - 1;
    }
    state.counters["steps"] = static_cast<double>(steps);
    set_flop_counters(state, t5_greedy_flops(t5.model.config(), kBatch, kSource, steps, t5.lora_flops()),
                      dtype_arg(state));
}

// One LoRA training step (r 8 on q,v; forward with loss, backward, AdamW), the peer's setting.
void BM_T5LoraTrainStep(benchmark::State & state) {
    LoraT5           t5(dtype_arg(state));
    T5Model &        model = t5.model;
    AdamW            optimizer(t5.adapter.parameters(), AdamWOptions{});
    const at::Tensor ids = random_ids(kSource), mask = at::ones({ kBatch, kSource }, at::kLong);
    const at::Tensor labels = random_ids(kTarget);
    model.set_training(true);
    for (auto _ : state) {
        const at::Tensor loss = model.forward(ids, mask, {}, labels).loss;
        loss.backward();
        optimizer.step(1e-3);
        optimizer.zero_grad();
        benchmark::DoNotOptimize(loss.item<float>());
    }
    set_flop_counters(state, t5_adapter_train_step_flops(model.config(), kBatch, kSource, kTarget, t5.lora_flops()),
                      dtype_arg(state));
}

void configure(benchmark::internal::Benchmark * b) {
    b->ArgName("bits")->Arg(32)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_T5Forward)->Apply(configure);
BENCHMARK(BM_T5Generate8)->Apply(configure);
BENCHMARK(BM_T5LoraTrainStep)->Apply(configure);

}  // namespace
