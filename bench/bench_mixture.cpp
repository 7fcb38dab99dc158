// The cost of mixing LoRA experts: forward passes (with loss) of a random t5-small-sized model,
// batch 8, source 128, target 8, with no adapter, one LoRA (r 8 on q,v), a CGM mixture of 3 and
// of 8 such experts (stacked: two GEMMs per module), and the same mixtures computed by a naive
// loop over the experts. Each reports its model FLOPs and fraction of GEMM peak (flop_counters.h).
//
//   bench-mixture [--threads N] [Google Benchmark flags]
#include "flop_counters.h"

#include "adapters/lora.h"
#include "adapters/lora_mixture.h"
#include "models/t5.h"
#include "models/t5_flops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

constexpr int64_t kBatch = 8, kSource = 128, kTarget = 8;

T5Model t5_small(c10::ScalarType dtype) {
    const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                    { "num_layers", 6 },     { "num_heads", 8 }, { "feed_forward_proj", "relu" } };
    return T5Model::random(T5Config::from_json(config, "t5-small"), 0, dtype);
}

// n random experts (r 8 on q,v) written as PEFT folders; returned as --expert specs.
std::vector<ExpertSpec> write_experts(T5Model & model, int n) {
    const fs::path          dir = fs::temp_directory_path() / "cgm-bench-experts";
    std::vector<ExpertSpec> specs;
    for (int e = 0; e < n; ++e) {
        LoraAdapter adapter = create_lora(model.linear_modules(), LoraConfig{}, static_cast<uint64_t>(e));
        for (auto & [path, layer] : adapter.layers) {
            c10::NoGradGuard no_grad;
            layer->B.normal_(0.0, 0.02);
        }
        const std::string path = (dir / ("e" + std::to_string(e))).string();
        save_lora(adapter, path);
        specs.push_back({ "e" + std::to_string(e), path });
    }
    return specs;
}

// The naive mixture: one LoRA pass per expert, weighted by the same per-example gate.
class LoopMixture : public LinearAdapter {
  public:
    LoopMixture(std::vector<std::shared_ptr<LoraLayer>> experts, std::shared_ptr<CgmGate> gate)
        : experts_(std::move(experts)), gate_(std::move(gate)) {}
    at::Tensor delta(const at::Tensor & x, const AdapterCall &) const override {
        const at::Tensor c   = at::softmax(gate_->logits(x).mean(1), -1).to(x.scalar_type());  // [B, E]
        at::Tensor       out = at::zeros({ x.size(0), x.size(1), experts_.front()->B.size(0) }, x.options());
        for (size_t e = 0; e < experts_.size(); ++e) {
            const auto & l = *experts_[e];
            out = out + at::linear(at::linear(x, l.A.to(x.scalar_type())), l.B.to(x.scalar_type())) * l.scaling *
                            c.select(1, static_cast<int64_t>(e)).view({ -1, 1, 1 });
        }
        return out;
    }

  private:
    std::vector<std::shared_ptr<LoraLayer>> experts_;
    std::shared_ptr<CgmGate>                gate_;
};

// adapters: 0 none, 1 one LoRA, n > 1 a CGM mixture of n; loop: the naive per-expert version.
void run(benchmark::State & state, int adapters, bool loop) {
    const c10::ScalarType dtype = state.range(0) == 16 ? at::kBFloat16 : at::kFloat;
    T5Model               model = t5_small(dtype);
    LoraAdapter           single;
    std::unique_ptr<LoraMixture> mixture;
    std::vector<LoraAdapter>     loaded;
    if (adapters == 1) {
        single = create_lora(model.linear_modules(), LoraConfig{}, 0);
        attach_lora(model.linear_modules(), single);
    } else if (adapters > 1) {
        const auto specs = write_experts(model, adapters);
        mixture          = std::make_unique<LoraMixture>(model.linear_modules(), specs, dtype);
        mixture->attach_cgm(MixMode::example, 4, {}, 0);
        if (loop) {
            // Same gates, experts applied one by one.
            const auto gates = mixture->gate_parameters();
            for (const auto & s : specs) {
                loaded.push_back(load_lora(s.dir, model.linear_modules(), dtype));
            }
            size_t g = 0;
            for (const auto & m : model.linear_modules()) {
                if (g < mixture->gated_modules().size() && mixture->gated_modules()[g] == m.path) {
                    auto gate = std::make_shared<CgmGate>();
                    gate->lin1_weight   = gates[4 * g].second;
                    gate->lin1_bias     = gates[4 * g + 1].second;
                    gate->output_weight = gates[4 * g + 2].second;
                    gate->output_bias   = gates[4 * g + 3].second;
                    std::vector<std::shared_ptr<LoraLayer>> layers;
                    for (const auto & a : loaded) {
                        for (const auto & [path, layer] : a.layers) {
                            if (path == m.path) {
                                layers.push_back(layer);
                            }
                        }
                    }
                    m.linear->adapter = std::make_shared<LoopMixture>(layers, gate);
                    ++g;
                }
            }
        }
    }
    const at::Tensor   ids = at::randint(3, 32000, { kBatch, kSource }, at::kLong);
    const at::Tensor   mask = at::ones({ kBatch, kSource }, at::kLong);
    const at::Tensor   labels = at::randint(3, 32000, { kBatch, kTarget }, at::kLong);
    c10::InferenceMode no_autograd;
    for (auto _ : state) {
        benchmark::DoNotOptimize(model.forward(ids, mask, {}, labels).loss.item<float>());
    }
    const AdapterFlops adapter_flops = [&](const std::string & path) {
        return adapters == 1 ? single.flops_per_row(path) : mixture ? mixture->flops_per_row(path) : 0.0;
    };
    set_flop_counters(state, t5_forward_flops(model.config(), kBatch, kSource, kTarget, adapter_flops), dtype);
}

void configure(benchmark::internal::Benchmark * b) {
    b->ArgName("bits")->Arg(32)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(run, base, 0, false)->Apply(configure);
BENCHMARK_CAPTURE(run, lora, 1, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm3_stacked, 3, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm3_loop, 3, true)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm8_stacked, 8, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm8_loop, 8, true)->Apply(configure);

}  // namespace
