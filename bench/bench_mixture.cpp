// The cost of mixing LoRA experts. Layer level: forward passes (with loss) of a random
// t5-small-sized model, batch 8, source 128, target 8, with no adapter, one LoRA (r 8 on q,v), a
// CGM mixture of 3 and of 8 such experts (stacked: two GEMMs per module), and the same mixtures
// computed by a naive loop over the experts. Output level: evaluation forwards of a random
// BEiT-base-sized classifier (as bench_beit.cpp but image 112: at 224 one iteration of 3 experts
// took 7.3 s in f32 on one thread of a 2-core machine), batch 8, experts r 8 on query,value: the
// output mixture's expectation over 3 experts (the 3 expert passes batched in one) against 3
// separate single-LoRA passes combined by hand (the naive baseline, checked equal to it), and
// the mixture's top-1 (each example through its chosen expert only) against one LoRA alone.
// Each reports its model FLOPs and fraction of GEMM peak (flop_counters.h); adapters are counted
// as executed (a mixture's rows go through its whole stack of experts).
//
//   bench-mixture [--threads N] [Google Benchmark flags]
#include "flop_counters.h"

#include "adapters/lora.h"
#include "adapters/lora_mixture.h"
#include "adapters/output_mixture.h"
#include "models/beit.h"
#include "models/beit_flops.h"
#include "models/t5.h"
#include "models/t5_flops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

constexpr int64_t kBatch = 8, kSource = 128, kTarget = 8;
constexpr int64_t kImage = 112, kExperts = 3, kGateHidden = 4;

c10::ScalarType dtype_of(int64_t bits) {
    return bits == 16 ? at::kBFloat16 : at::kFloat;
}

T5Model t5_small(c10::ScalarType dtype) {
    const nlohmann::json config = { { "vocab_size", 32128 }, { "d_model", 512 }, { "d_kv", 64 }, { "d_ff", 2048 },
                                    { "num_layers", 6 },     { "num_heads", 8 }, { "feed_forward_proj", "relu" } };
    return T5Model::random(T5Config::from_json(config, "t5-small"), 0, dtype);
}

// n random experts (LoRA as `config`, B non-zero) written as PEFT folders; returned as --expert specs.
std::vector<ExpertSpec> write_experts(const std::vector<NamedLinear> & modules, const LoraConfig & config, int64_t n) {
    const fs::path          dir = fs::temp_directory_path() / "cgm-bench-experts";
    std::vector<ExpertSpec> specs;
    for (int64_t e = 0; e < n; ++e) {
        LoraAdapter adapter = create_lora(modules, config, static_cast<uint64_t>(e));
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
    const c10::ScalarType dtype = dtype_of(state.range(0));
    T5Model               model = t5_small(dtype);
    LoraAdapter           single;
    std::unique_ptr<LoraMixture> mixture;
    std::vector<LoraAdapter>     loaded;
    if (adapters == 1) {
        single = create_lora(model.linear_modules(), LoraConfig{}, 0);
        attach_lora(model.linear_modules(), single);
    } else if (adapters > 1) {
        const auto specs = write_experts(model.linear_modules(), LoraConfig{}, adapters);
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

// ---- Output-level mixtures on BEiT ----

BeitModel beit_base(c10::ScalarType dtype) {
    const nlohmann::json config = { { "hidden_size", 768 },
                                    { "num_hidden_layers", 12 },
                                    { "num_attention_heads", 12 },
                                    { "intermediate_size", 3072 },
                                    { "image_size", kImage },
                                    { "patch_size", 16 },
                                    { "use_relative_position_bias", true },
                                    { "layer_scale_init_value", 0.1 },
                                    { "use_mean_pooling", true },
                                    { "num_labels", 1000 } };
    return BeitModel::random(BeitConfig::from_json(config, "beit-base"), 0, dtype);
}

LoraConfig beit_lora() {  // r 8, alpha 16
    LoraConfig c;
    c.targets   = { "query", "value" };
    c.task_type = "";  // PEFT's null: image classifiers have no task type
    return c;
}

AdapterFlops lora_flops(const LoraAdapter & lora) {
    return [&lora](const std::string & path) { return lora.flops_per_row(path); };
}

// A batch's output gate: the patch embedding it reads (each patch's C P P values times [C P P, D])
// and its two products.
double gate_flops(const BeitConfig & c, const OutputMixture & mixture) {
    const double patch_embedding = 2.0 * static_cast<double>(c.num_patches() * c.num_channels * c.patch_size *
                                                             c.patch_size * c.hidden_size);
    return static_cast<double>(kBatch) * (patch_embedding + mixture.gate_flops());
}

// The naive output-level expectation: the mixture's gate on the mean patch embedding (this config
// has no absolute position embeddings), then each expert attached alone for a pass of its own and
// the class probabilities summed under the gate's weights by hand.
class SeparatePasses {
  public:
    SeparatePasses(BeitModel & model, std::vector<LoraAdapter> experts, const OutputMixture & mixture)
        : model_(model), modules_(model.linear_modules()), experts_(std::move(experts)) {
        const NamedTensors g = mixture.parameters();  // lin1.{weight,bias}, output.{weight,bias}
        gate_ = { g[0].second, g[1].second, g[2].second, g[3].second };
        const NamedTensors                      named = model.named_parameters();
        const std::map<std::string, at::Tensor> params(named.begin(), named.end());
        patch_weight_ = params.at("beit.embeddings.patch_embeddings.projection.weight");  // [D, C, P, P]
        patch_bias_   = params.at("beit.embeddings.patch_embeddings.projection.bias");    // [D]
    }

    // pixels [B, C, H, W] -> log of the mixed class probabilities [B, num_labels]
    at::Tensor operator()(const at::Tensor & pixels) {
        const int64_t    p        = model_.config().patch_size;
        const at::Tensor patches  = at::conv2d(pixels.to(model_.dtype()), patch_weight_, patch_bias_, { p, p });
        const at::Tensor features = patches.flatten(2).mean(-1);                   // [B, D, grid, grid] -> [B, D]
        const at::Tensor weights  = at::softmax(gate_.logits(features), -1);       // [B, E]
        at::Tensor       mixed;                                                    // [B, num_labels]
        for (size_t e = 0; e < experts_.size(); ++e) {
            attach_lora(modules_, experts_[e]);
            const at::Tensor term = at::softmax(model_.forward(pixels).logits, -1) *
                                    weights.select(1, static_cast<int64_t>(e)).unsqueeze(1);  // [B, num_labels]
            mixed = mixed.defined() ? mixed + term : term;
        }
        return mixed.log();
    }

  private:
    BeitModel &              model_;
    std::vector<NamedLinear> modules_;
    std::vector<LoraAdapter> experts_;
    CgmGate                  gate_;
    at::Tensor               patch_weight_, patch_bias_;
};

// Times forward() (-> [B, num_labels]) in inference mode; reports `flops` per iteration.
void time_forward(benchmark::State & state, const std::function<at::Tensor()> & forward, double flops,
                  c10::ScalarType dtype) {
    c10::InferenceMode no_autograd;
    for (auto _ : state) {
        benchmark::DoNotOptimize(forward());
    }
    set_flop_counters(state, flops, dtype);
}

enum class BeitCase { output_expectation, separate_passes, output_top1, one_lora };

// Range 0: the number of experts, range 1: bits (32 or 16).
void beit(benchmark::State & state, BeitCase c) {
    const c10::ScalarType          dtype   = dtype_of(state.range(1));
    BeitModel                      model   = beit_base(dtype);
    const BeitConfig &             config  = model.config();
    const std::vector<NamedLinear> modules = model.linear_modules();
    const std::vector<ExpertSpec>  specs   = write_experts(modules, beit_lora(), state.range(0));
    const at::Tensor               pixels  = at::randn({ kBatch, config.num_channels, kImage, kImage });  // [B, C, H, W]
    const auto                     forward = [&] { return model.forward(pixels).logits; };  // [B, num_labels]
    if (c == BeitCase::one_lora) {
        const LoraAdapter lora = load_lora(specs.front().dir, modules, dtype);
        attach_lora(modules, lora);
        time_forward(state, forward, beit_forward_flops(config, kBatch, lora_flops(lora)), dtype);
        return;
    }
    LoraMixture       experts(modules, specs, dtype);
    OutputMixSettings settings;
    settings.combiner  = c == BeitCase::output_top1 ? Combiner::top_k : Combiner::expectation;  // top_k is 1
    const auto mixture = std::make_shared<OutputMixture>(experts, model.hidden_size(), kGateHidden, settings, 0,
                                                         model.device());
    model.set_output_mixture(mixture);
    if (c != BeitCase::separate_passes) {
        const AdapterFlops stacked = [&](const std::string & path) { return experts.flops_per_row(path); };
        const int64_t      passes  = c == BeitCase::output_top1 ? 1 : experts.num_experts();
        const double       flops   = static_cast<double>(passes) * beit_forward_flops(config, kBatch, stacked);
        time_forward(state, forward, flops + gate_flops(config, *mixture), dtype);
        return;
    }
    std::vector<LoraAdapter> loaded;
    for (const auto & s : specs) {
        loaded.push_back(load_lora(s.dir, modules, dtype));
    }
    double flops = gate_flops(config, *mixture);
    for (const auto & lora : loaded) {
        flops += beit_forward_flops(config, kBatch, lora_flops(lora));
    }
    SeparatePasses separate(model, std::move(loaded), *mixture);
    {
        // The baseline must compute what the mixture does.
        c10::InferenceMode no_autograd;
        const at::Tensor   mixed = forward();  // [B, num_labels] log-probabilities
        model.set_output_mixture(nullptr);
        const double gap = (separate(pixels) - mixed).abs().max().item<double>();
        if (gap > (dtype == at::kFloat ? 1e-4 : 5e-2)) {
            const std::string why = "separate passes differ from the output mixture by " + std::to_string(gap);
            state.SkipWithError(why.c_str());
            return;
        }
    }
    time_forward(state, [&] { return separate(pixels); }, flops, dtype);
}

void configure(benchmark::internal::Benchmark * b) {
    b->ArgName("bits")->Arg(32)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
}

void configure_beit(benchmark::internal::Benchmark * b, int64_t experts) {
    b->ArgNames({ "experts", "bits" })->Args({ experts, 32 })->Args({ experts, 16 });
    b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void beit_experts(benchmark::internal::Benchmark * b) {
    configure_beit(b, kExperts);
}

void beit_one(benchmark::internal::Benchmark * b) {
    configure_beit(b, 1);
}

BENCHMARK_CAPTURE(run, base, 0, false)->Apply(configure);
BENCHMARK_CAPTURE(run, lora, 1, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm3_stacked, 3, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm3_loop, 3, true)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm8_stacked, 8, false)->Apply(configure);
BENCHMARK_CAPTURE(run, cgm8_loop, 8, true)->Apply(configure);
BENCHMARK_CAPTURE(beit, output_expectation, BeitCase::output_expectation)->Apply(beit_experts);
BENCHMARK_CAPTURE(beit, separate_passes, BeitCase::separate_passes)->Apply(beit_experts);
BENCHMARK_CAPTURE(beit, output_top1, BeitCase::output_top1)->Apply(beit_experts);
BENCHMARK_CAPTURE(beit, one_lora, BeitCase::one_lora)->Apply(beit_one);

}  // namespace
