#include "adapters/xlora.h"

#include "core/error.h"
#include "models/dropout.h"
#include "core/random.h"
#include "io/json_file.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace cgm {
namespace {

constexpr const char * kClassifierPrefix = "base_model.internal_xlora_classifier.layers.";

// One module's experts, weighted by the current X-LoRA scalings.
class XLoraLayer : public LinearAdapter {
  public:
    XLoraLayer(std::string path, ExpertStack stack, std::shared_ptr<XLoraRouting> routing, int64_t layer,
               int64_t n_experts, bool per_token, const XLoraConfig & config, GateLog * log)
        : path_(std::move(path)), stack_(std::move(stack)), routing_(std::move(routing)), layer_(layer),
          n_experts_(n_experts), per_token_(per_token), config_(config), log_(log) {}

    // Per-token scalings line up with the whole routed sequence, not a chunk of it.
    bool needs_whole_sequence() const override { return per_token_; }

    at::Tensor delta(const at::Tensor & x, const AdapterCall &) const override {
        if (routing_->scaling_pass) {
            return stack_.apply(x, at::full({ n_experts_ }, config_.scaling_pass_value, x.options().dtype(at::kFloat)));
        }
        if (!routing_->scalings.defined() || routing_->scalings.size(0) != x.size(0)) {
            throw Error(path_ + ": X-LoRA scalings are missing or for another batch (the encoder must run first)");
        }
        at::Tensor a = per_token_ ? routing_->scalings.select(2, layer_)                   // [B, S, E]
                                  : routing_->mean_scalings.select(1, layer_).unsqueeze(1);  // [B, 1, E]
        if (per_token_ && a.size(1) != x.size(1)) {
            throw Error(path_ + ": X-LoRA per-token scalings cover " + std::to_string(a.size(1)) + " tokens, input has " +
                        std::to_string(x.size(1)));
        }
        if (config_.top_k > 0 && config_.top_k < a.size(-1)) {
            const at::Tensor chosen = std::get<1>(at::topk(a, config_.top_k, -1));
            a = at::zeros_like(a).scatter(-1, chosen, a.gather(-1, chosen));
            if (config_.softmax_topk) {
                a = at::softmax(a.masked_fill(a == 0, -std::numeric_limits<double>::infinity()), -1);
            }
        }
        if (log_ != nullptr && log_->enabled) {
            log_->batches[path_].push_back(routing_->mean_scalings.select(1, layer_).detach().to(at::kCPU));
        }
        return stack_.apply(x, a * config_.global_scaling);
    }

  private:
    std::string                   path_;
    ExpertStack                   stack_;
    std::shared_ptr<XLoraRouting> routing_;
    int64_t                       layer_;
    int64_t                       n_experts_;
    bool                          per_token_;
    XLoraConfig                   config_;
    GateLog *                     log_;
};

}  // namespace

XLoraConfig XLoraConfig::from_peft_json(const nlohmann::json & j, const std::string & source) {
    XLoraConfig c;
    try {
        c.hidden_size  = j.at("hidden_size").get<int64_t>();
        c.depth        = j.value("xlora_depth", c.depth);
        c.size         = j.value("xlora_size", c.size);
        c.dropout      = j.value("xlora_dropout_p", c.dropout);
        c.layerwise    = j.value("layerwise_scalings", c.layerwise);
        c.temperature  = j.value("softmax_temperature", c.temperature);
        c.top_k        = j.contains("top_k_lora") && !j["top_k_lora"].is_null() ? j["top_k_lora"].get<int64_t>() : 0;
        c.softmax_topk = j.value("enable_softmax_topk", c.softmax_topk);
        c.scaling_pass_value = j.value("scaling_pass_value", c.scaling_pass_value);
        c.global_scaling     = j.value("global_scaling_weight", c.global_scaling);
        if (!j.value("enable_softmax", true)) {
            fail(source, "enable_softmax false is not supported");
        }
    } catch (const nlohmann::json::exception & e) {
        fail(source, std::string("not an X-LoRA config: ") + json_error_text(e));
    }
    if (c.depth < 1 || c.size < 1 || c.temperature <= 0) {
        fail(source, "xlora_depth, xlora_size and softmax_temperature must be positive");
    }
    return c;
}

nlohmann::json XLoraConfig::to_json() const {
    return { { "peft_type", "XLORA" },
             { "hidden_size", hidden_size },
             { "xlora_depth", depth },
             { "xlora_size", size },
             { "xlora_dropout_p", dropout },
             { "layerwise_scalings", layerwise },
             { "softmax_temperature", temperature },
             { "top_k_lora", top_k > 0 ? nlohmann::json(top_k) : nlohmann::json() },
             { "enable_softmax", true },
             { "enable_softmax_topk", softmax_topk },
             { "scaling_pass_value", scaling_pass_value },
             { "global_scaling_weight", global_scaling } };
}

std::shared_ptr<XLoraGate> XLoraGate::attach(AdaptableModel & model, LoraMixture & mixture, XLoraConfig config,
                                             uint64_t seed) {
    std::shared_ptr<XLoraGate> gate(new XLoraGate(model, mixture, std::move(config), seed));
    model.set_input_router(gate);
    return gate;
}

XLoraGate::~XLoraGate() {
    routing_->scalings      = at::Tensor();
    routing_->mean_scalings = at::Tensor();
}

XLoraGate::XLoraGate(AdaptableModel & model, LoraMixture & mixture, XLoraConfig config, uint64_t seed)
    : config_(std::move(config)), routing_(std::make_shared<XLoraRouting>()),
      n_experts_(mixture.num_experts()) {
    const auto & stacks = mixture.stacks();
    for (const auto & m : model.linear_modules()) {
        const auto it = stacks.find(m.path);
        if (it != stacks.end()) {
            m.linear->adapter = std::make_shared<XLoraLayer>(m.path, it->second, routing_, num_layers(), n_experts_,
                                                             model.sees_routed_tokens(m.path), config_, &mixture.log());
            modules_.push_back(m.path);
        }
    }
    // peft's classifier: Linear, ReLU, [Dropout], ... , Linear, as one nn.Sequential.
    const int64_t d      = model.hidden_size();
    const int64_t n_out  = config_.layerwise ? num_layers() * n_experts_ : n_experts_;
    at::Generator gen    = at::make_generator<at::CPUGeneratorImpl>(seed);
    int64_t       index  = 0;
    const auto    linear = [&](int64_t in, int64_t out) {
        weights_.emplace_back(index, uniform_fan_in({ out, in }, in, gen));
        biases_.emplace_back(index, uniform_fan_in({ out }, in, gen));
        ++index;
    };
    if (config_.depth == 1) {
        linear(d, n_out);
    } else {
        for (int64_t layer = 0; layer < config_.depth - 1; ++layer) {
            linear(layer == 0 ? d : config_.size, config_.size);
            index += config_.dropout > 0 ? 2 : 1;  // ReLU [, Dropout]
        }
        linear(config_.size, n_out);
    }
    for (auto * list : { &weights_, &biases_ }) {
        for (auto & kv : *list) {
            kv.second = kv.second.to(model.device()).requires_grad_(true);
        }
    }
}

NamedTensors XLoraGate::parameters() const {
    NamedTensors out;
    for (size_t i = 0; i < weights_.size(); ++i) {
        out.emplace_back(kClassifierPrefix + std::to_string(weights_[i].first) + ".weight", weights_[i].second);
        out.emplace_back(kClassifierPrefix + std::to_string(biases_[i].first) + ".bias", biases_[i].second);
    }
    return out;
}

at::Tensor XLoraGate::classify(const at::Tensor & hidden, bool training) const {
    at::Tensor x = hidden.to(at::kFloat);
    for (size_t i = 0; i < weights_.size(); ++i) {
        x = at::linear(x, weights_[i].second, biases_[i].second);
        if (i + 1 < weights_.size()) {
            x = at::relu(x);
            if (training && config_.dropout > 0) {
                x = cgm::dropout(x, config_.dropout);
            }
        }
    }
    return x;  // [B, S, n_out]
}

void XLoraGate::route(const RoutingInput & input) {
    routing_->scaling_pass = true;
    at::Tensor hidden;
    try {
        c10::NoGradGuard no_grad;
        hidden = input.encode();  // [B, S, d]: T5's encoder output after the final norm
    } catch (...) {
        routing_->scaling_pass = false;
        throw;
    }
    routing_->scaling_pass = false;
    const int64_t b = hidden.size(0), s = hidden.size(1), l = num_layers();
    at::Tensor    logits = classify(hidden, input.training);
    logits = config_.layerwise ? logits.view({ b, s, l, n_experts_ }) : logits.unsqueeze(2).expand({ b, s, l, n_experts_ });
    routing_->scalings      = at::softmax(logits / config_.temperature, -1);  // [B, S, L, E]
    const at::Tensor m      = input.mask ? input.mask->to(at::kFloat).view({ b, s, 1, 1 })
                                         : at::ones({ b, s, 1, 1 }, hidden.options().dtype(at::kFloat));
    routing_->mean_scalings = (routing_->scalings * m).sum(1) / m.sum(1).clamp_min(1.0);  // [B, L, E]
}

}  // namespace cgm
