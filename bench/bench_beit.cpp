// BEiT forward and a LoRA training step on a random BEiT-base-sized image classifier (image 224,
// patch 16, 12 layers, hidden 768, 12 heads, ff 3072, 1000 labels, relative position bias per layer,
// layer scale 0.1, mean pooling) with LoRA r 8 / alpha 16 on query,value (not merged) and the
// classifier trained in full (modules_to_save), batch 8: the peer's setting (scripts/peer-bench runs
// PEFT on it). Each reports its model FLOPs, GFLOP/s and fraction of the GEMM peak (flop_counters.h).
//
//   bench-beit [--threads N] [Google Benchmark flags, e.g. --benchmark_repetitions=7]
//
// Peak memory is the process's maximum resident set size; select one benchmark so that it is that
// one's (the start-up GEMM peak measurement takes far less):
//
//   /usr/bin/time -v bench-beit --benchmark_filter='BM_BeitLoraTrainStep/bits:32/' 2>&1 | grep 'Maximum resident'
#include "flop_counters.h"

#include "adapters/lora.h"
#include "models/beit.h"
#include "models/beit_flops.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

using namespace cgm;

namespace {

constexpr int64_t kBatch = 8;

BeitConfig beit_base_config() {
    const nlohmann::json config = { { "hidden_size", 768 },
                                    { "num_hidden_layers", 12 },
                                    { "num_attention_heads", 12 },
                                    { "intermediate_size", 3072 },
                                    { "image_size", 224 },
                                    { "patch_size", 16 },
                                    { "use_relative_position_bias", true },
                                    { "layer_scale_init_value", 0.1 },
                                    { "drop_path_rate", 0.1 },
                                    { "use_mean_pooling", true },
                                    { "num_labels", 1000 } };
    return BeitConfig::from_json(config, "beit-base");
}

LoraConfig lora_config() {
    LoraConfig c;
    c.r               = 8;
    c.alpha           = 16.0;
    c.targets         = { "query", "value" };
    c.modules_to_save = { "classifier" };
    c.task_type       = "";  // PEFT's null: image classifiers have no task type
    return c;
}

// BEiT-base with LoRA attached (B = 0: the costs do not depend on the values).
struct LoraBeit {
    BeitModel   model;
    LoraAdapter adapter;

    explicit LoraBeit(c10::ScalarType dtype)
        : model(BeitModel::random(beit_base_config(), 0, dtype)),
          adapter(create_lora(model.linear_modules(), lora_config(), 0)) {
        attach_lora(model.linear_modules(), adapter);
    }
    AdapterFlops lora_flops() const {
        return [this](const std::string & path) { return adapter.flops_per_row(path); };
    }
};

// One model per dtype, shared by the inference benchmarks.
const LoraBeit & beit_base(c10::ScalarType dtype) {
    static std::map<c10::ScalarType, std::unique_ptr<LoraBeit>> models;
    std::unique_ptr<LoraBeit> & m = models[dtype];
    if (!m) {
        m = std::make_unique<LoraBeit>(dtype);
    }
    return *m;
}

at::Tensor random_pixels() {
    return at::randn({ kBatch, 3, 224, 224 });  // [B, C, H, W], normalised values
}

at::Tensor random_labels() {
    return at::randint(0, 1000, { kBatch }, at::kLong);
}

c10::ScalarType dtype_arg(const benchmark::State & state) {
    return state.range(0) == 16 ? at::kBFloat16 : at::kFloat;
}

void BM_BeitForward(benchmark::State & state) {
    const LoraBeit &   beit   = beit_base(dtype_arg(state));
    const at::Tensor   pixels = random_pixels(), labels = random_labels();
    c10::InferenceMode no_autograd;
    for (auto _ : state) {
        benchmark::DoNotOptimize(beit.model.forward(pixels, labels).loss.item<float>());
    }
    set_flop_counters(state, beit_forward_flops(beit.model.config(), kBatch, beit.lora_flops()), dtype_arg(state));
}

// One LoRA training step (forward with cross-entropy, backward, AdamW) in training mode: drop path
// 0.1, as the config's default.
void BM_BeitLoraTrainStep(benchmark::State & state) {
    LoraBeit         beit(dtype_arg(state));
    BeitModel &      model = beit.model;
    AdamW            optimizer(beit.adapter.parameters(), AdamWOptions{});
    const at::Tensor pixels = random_pixels(), labels = random_labels();
    model.set_training(true);
    for (auto _ : state) {
        const at::Tensor loss = model.forward(pixels, labels).loss;
        loss.backward();
        optimizer.step(1e-3);
        optimizer.zero_grad();
        benchmark::DoNotOptimize(loss.item<float>());
    }
    set_flop_counters(state, beit_adapter_train_step_flops(model.config(), kBatch, beit.lora_flops()),
                      dtype_arg(state));
}

void configure(benchmark::internal::Benchmark * b) {
    b->ArgName("bits")->Arg(32)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_BeitForward)->Apply(configure);
BENCHMARK(BM_BeitLoraTrainStep)->Apply(configure);

}  // namespace
