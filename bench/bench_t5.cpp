// T5 forward, greedy decoding and a LoRA training step on a random t5-small-sized model (d_model 512, d_ff 2048,
// 8 heads x 64, 6+6 layers, vocab 32128), batch 8, source 128, target 8.
//
//   bench-t5 [--threads N] [Google Benchmark flags, e.g. --benchmark_repetitions=7]
#include "adapters/lora.h"
#include "models/t5.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <map>

using namespace cgm;

namespace {

constexpr int64_t kBatch = 8, kSource = 128, kTarget = 8;

const T5Model & t5_small(c10::ScalarType dtype) {
    static std::map<c10::ScalarType, T5Model> models;
    auto it = models.find(dtype);
    if (it == models.end()) {
        const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                        { "num_layers", 6 }, { "num_heads", 8 }, { "feed_forward_proj", "relu" } };
        it = models.emplace(dtype, T5Model::random(T5Config::from_json(config, "t5-small"), 0, dtype)).first;
        // A zero EOS embedding gives EOS logit 0 while 32k random logits are spread around it, so
        // greedy decoding runs all 8 steps (the "steps" counter shows it).
        it->second.named_parameters().front().second[1].zero_();
    }
    return it->second;
}

at::Tensor random_ids(int64_t t) {
    return at::randint(3, 32000, { kBatch, t }, at::kLong);
}

c10::ScalarType dtype_arg(const benchmark::State & state) {
    return state.range(0) == 16 ? at::kBFloat16 : at::kFloat;
}

void BM_T5Forward(benchmark::State & state) {
    const T5Model &    model = t5_small(dtype_arg(state));
    const at::Tensor   ids = random_ids(kSource), mask = at::ones({ kBatch, kSource }, at::kLong);
    const at::Tensor   labels = random_ids(kTarget);
    c10::InferenceMode no_autograd;
    for (auto _ : state) {
        benchmark::DoNotOptimize(model.forward(ids, mask, {}, labels).loss.item<float>());
    }
    state.SetLabel(dtype_arg(state) == at::kBFloat16 ? "bf16" : "f32");
}

void BM_T5Generate8(benchmark::State & state) {
    const T5Model &  model = t5_small(dtype_arg(state));
    const at::Tensor ids = random_ids(kSource), mask = at::ones({ kBatch, kSource }, at::kLong);
    for (auto _ : state) {
        const T5Generation gen = model.generate(ids, mask, kTarget);
        state.counters["steps"] = static_cast<double>(gen.ids.size(1) - 1);
    }
    state.SetLabel(dtype_arg(state) == at::kBFloat16 ? "bf16" : "f32");
}

// One LoRA training step (r 8 on q,v; forward with loss, backward, AdamW), the peer's setting.
void BM_T5LoraTrainStep(benchmark::State & state) {
    const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                    { "num_layers", 6 }, { "num_heads", 8 }, { "feed_forward_proj", "relu" },
                                    { "dropout_rate", 0.1 } };
    T5Model     model = T5Model::random(T5Config::from_json(config, "t5-small"), 0, dtype_arg(state));
    LoraConfig  lora;  // r 8, alpha 16, targets q,v
    LoraAdapter adapter = create_lora(model.linear_modules(), lora, 0);
    attach_lora(model.linear_modules(), adapter);
    AdamW            optimizer(adapter.parameters(), AdamWOptions{});
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
    state.SetLabel(dtype_arg(state) == at::kBFloat16 ? "bf16" : "f32");
}

void configure(benchmark::internal::Benchmark * b) {
    b->ArgName("bits")->Arg(32)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_T5Forward)->Apply(configure);
BENCHMARK(BM_T5Generate8)->Apply(configure);
BENCHMARK(BM_T5LoraTrainStep)->Apply(configure);

}  // namespace
