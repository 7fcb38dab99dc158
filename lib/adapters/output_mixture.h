#pragma once
// Output-level mixtures of LoRA experts (the gated modular MoE seed): each expert is the whole
// base with its own LoRA; a gate Linear(D, H) -> ReLU -> Linear(H, E) on the input's pooled
// representation gives p = softmax(logits / T) (or the escort transform) and a combiner mixes the
// experts' outputs (output_combiners.h). For T5 the mixture is over each step's next-token
// distribution, for BEiT over the class probabilities.
//
// The E expert passes are one batched pass: the batch repeated per expert (expert-major rows),
// each row through its own expert's LoRA from the stacked A_cat/B_cat (RowRouting). Where each
// example needs one expert (top-1, stochastic and loss-gate at evaluation), it runs through that
// expert only.
#include "adapters/gate_regularisers.h"
#include "adapters/lora_mixture.h"
#include "adapters/output_combiners.h"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <string>

namespace cgm {

// What the gate sees: the mean of the input's embeddings (T5's token embeddings, BEiT's patch
// embeddings: nearly free), or the base's pooled features (one more pass, experts off).
enum class GateInput { embedding, base };

struct OutputMixSettings {
    Combiner      combiner    = Combiner::expectation;
    int64_t       top_k       = 1;  // combiner top-k
    GateTransform transform   = GateTransform::softmax;
    GateInput     input       = GateInput::embedding;
    double        temperature = 1.0;  // at the start of training
    double        eval_temperature = 0;  // where the schedule had brought it when saved (0: temperature)
    double        temperature_decay       = 0;  // the seed's per-epoch schedule (gate_regularisers.h)
    int64_t       temperature_decay_start = 0;
    // The seed's dual temperature: experts learn from the mixture at temperature T, the gate from
    // the mixture at T = 1 (with the experts' outputs detached).
    bool             dual_temperature = false;
    GateRegularisers regularisers;

    nlohmann::json           to_json() const;
    static OutputMixSettings from_json(const nlohmann::json & j, const std::string & source);
};

// What a model gives the mixture for one batch of B examples.
struct OutputMixInput {
    int64_t                                            batch = 0;
    std::function<at::Tensor()>                        input_features;  // [B, D] pooled input embeddings
    std::function<at::Tensor()>                        base_features;   // [B, D] the base's pooled output (rows routed to no expert)
    std::function<at::Tensor(const at::Tensor & rows)> logits;          // batch rows [N] -> [N, ..., C], each through its routed expert
    at::Tensor                                         labels;          // [B, ...] int64, -100 ignored; undefined: no loss
    bool                                               training = false;
};

struct MixedOutput {
    at::Tensor logits;  // [B, ..., C]: cross-entropy on them is the mixture's loss
    at::Tensor loss;    // training: the combiner's loss plus the penalties; else the mixture's cross-entropy
};

// An evaluation pass routed: the batch rows to run (rows[i]: the example model row i holds) and
// how their logits [N, ..., C] become the mixture's [B, ..., C].
struct OutputRoute {
    at::Tensor                                    rows;
    std::function<at::Tensor(const at::Tensor &)> mix;
};

class OutputMixture {
  public:
    // A fresh gate (seeded) on features of size `feature_size`, on `experts` (which it attaches
    // to every module they adapt) and `device`.
    OutputMixture(LoraMixture & experts, int64_t feature_size, int64_t hidden, OutputMixSettings settings, uint64_t seed,
                  c10::Device device);

    MixedOutput forward(const OutputMixInput & in);
    // Evaluation: the gate's choice for the batch, routed (used by forward and step-wise decoding).
    OutputRoute route(const OutputMixInput & in);

    // The gate under "output_gate.{lin1,output}.{weight,bias}".
    NamedTensors               parameters() const;
    const OutputMixSettings &  settings() const { return settings_; }
    double                     temperature() const { return temperature_; }
    void                       set_temperature(double t) { temperature_ = t; }
    // The temperature schedule at the start of `epoch` (training).
    void                       set_epoch(int64_t epoch);
    int64_t                    num_experts() const { return experts_.num_experts(); }
    // Multiply-adds x2 of one example's gate.
    double                     gate_flops() const;

  private:
    at::Tensor gate_features(const OutputMixInput & in);
    void       route_experts_major(int64_t batch);
    void       route_one_each(const at::Tensor & expert);
    // The deterministic combiners' logits (expectation, pre-softmax, top-k) of z under p.
    at::Tensor combined(const at::Tensor & z, const at::Tensor & p) const;
    MixedOutput train_forward(const OutputMixInput & in, const at::Tensor & features, const at::Tensor & gate_logits);

    LoraMixture &               experts_;
    std::shared_ptr<RowRouting> routing_;
    CgmGate                     gate_;
    OutputMixSettings           settings_;
    double                      temperature_;
};

}  // namespace cgm
