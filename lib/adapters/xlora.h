#pragma once
// X-LoRA gating with peft's XLoraModel semantics:
//   1. scaling pass (no gradient): every expert scaled by scaling_pass_value (0: the base model);
//   2. a classifier on the encoder's last hidden state gives per-token logits, [B, S, L*E]
//      (layerwise) or [B, S, E] (one set for every layer); scalings = softmax(logits / T);
//   3. real pass: LoRA module l adds g * sum_e s_e B_e A_e (x * scalings[:, :, l, e]), with
//      optional top-k per token (and softmax over the kept ones).
// L counts the modules that carry experts, in model order (peft's LoRA layer order).
// The scalings come from the model's routed sequence (AdaptableModel::sees_routed_tokens): modules
// that see it use each token's scalings; the others (T5's decoder) use the masked mean of the
// scalings over its real tokens, so decoding with the KV cache needs no second scaling pass.
#include "adapters/lora_mixture.h"
#include "models/adaptable_model.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cgm {

struct XLoraConfig {
    int64_t hidden_size        = 0;
    int64_t depth              = 1;
    int64_t size               = 2048;
    double  dropout            = 0.2;
    bool    layerwise          = false;
    double  temperature        = 1.0;
    int64_t top_k              = 0;  // 0: all experts
    bool    softmax_topk       = false;
    double  scaling_pass_value = 0.0;
    double  global_scaling     = 1.0;

    // peft's XLoraConfig fields (adapter_config.json of an X-LoRA model)
    static XLoraConfig from_peft_json(const nlohmann::json & j, const std::string & source);
    nlohmann::json     to_json() const;
};

// What the scaling pass leaves for the real pass.
struct XLoraRouting {
    bool       scaling_pass = false;
    at::Tensor scalings;       // [B, S, L, E]
    at::Tensor mean_scalings;  // [B, L, E]: masked mean over the encoder's real tokens
};

class XLoraGate : public InputRouter {
  public:
    // Attaches X-LoRA layers to every module of `mixture`, and the scaling pass before every
    // forward pass of the model (for as long as the gate lives); the classifier starts seeded.
    static std::shared_ptr<XLoraGate> attach(AdaptableModel & model, LoraMixture & mixture, XLoraConfig config,
                                             uint64_t seed);

    const XLoraConfig & config() const { return config_; }
    int64_t             num_layers() const { return static_cast<int64_t>(modules_.size()); }
    const std::vector<std::string> & modules() const { return modules_; }
    // Classifier tensors under peft's names: base_model.internal_xlora_classifier.layers.<i>.{weight,bias}
    NamedTensors        parameters() const;
    const XLoraRouting & routing() const { return *routing_; }

    // Runs the scaling pass on the input and the classifier on its hidden states; stores the scalings.
    void route(const RoutingInput & input) override;

    // The layers it attached stay: with the scalings gone they refuse to run rather than reuse them.
    ~XLoraGate() override;

  private:
    XLoraGate(AdaptableModel & model, LoraMixture & mixture, XLoraConfig config, uint64_t seed);
    at::Tensor classify(const at::Tensor & hidden, bool training) const;  // [B, S, d] -> logits

    XLoraConfig                   config_;
    std::vector<std::string>      modules_;
    std::vector<std::pair<int64_t, at::Tensor>> weights_, biases_;  // (index in the Sequential, tensor)
    std::shared_ptr<XLoraRouting> routing_;
    int64_t                       n_experts_ = 0;
};

}  // namespace cgm
