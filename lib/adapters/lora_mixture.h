#pragma once
// Several frozen LoRA experts on one base, stacked per module so that any mixture costs two
// GEMMs whatever the number of experts, mixed by fixed weights or by context gates (CGM).
//
//   fixed:            y = W x + sum_e w_e s_e B_e A_e x
//   cgm, mix example: y = W x + sum_e c_e s_e B_e A_e x, c = softmax(masked mean over the
//                     sequence of gate(x)) per example (decoder side: mean over positions <= t)
//   cgm, mix seed:    the seed code: c = mean over the batch of softmax(mean over the sequence of
//                     gate(x)), then A and B mixed separately: y = W x + s (sum c A)(sum c B) x
#include "adapters/gate_regularisers.h"
#include "adapters/lora.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cgm {

// The experts adapting one module, stacked along the rank: A_cat [R, d_in], B_cat [d_out, R],
// R = the sum of the ranks of the experts present here.
struct ExpertStack {
    at::Tensor           A_cat;
    at::Tensor           B_cat;
    at::Tensor           row_expert;   // [R] int64: the expert owning each row
    at::Tensor           row_scaling;  // [R] float32: that expert's s_e
    std::vector<int64_t> experts;      // experts present, in stacking order
    std::vector<int64_t> ranks;        // their ranks
    std::vector<double>  scalings;     // their s_e
    at::Tensor           expert_index; // [n] int64: `experts` on the stack's device

    // x: [B, T, d_in]; weights: [E] or [B, 1|T, E] -> sum_e w_e s_e B_e A_e x: [B, T, d_out]
    at::Tensor apply(const at::Tensor & x, const at::Tensor & weights) const;
};

// One expert's LoRA on a module: A [r, d_in], B [d_out, r], s = alpha / r.
struct ModuleExpert {
    int64_t    expert;  // its index in the mixture
    at::Tensor A, B;
    double     scaling;
};
// The experts of one module (at least one), in expert order, stacked on the device of the first one's A.
ExpertStack stack_experts(const std::vector<ModuleExpert> & experts);

// example, seed: gates inside every module (CGM); output: a gate mixes the outputs of whole
// experts (base + one LoRA each; output_mixture.h), the modules only carry each row's expert.
enum class MixMode { seed, example, output };
MixMode     parse_mix_mode(const std::string & name);  // "seed" | "example" | "output"
std::string mix_mode_name(MixMode mode);

// The gate of one module: Linear(d_in, H) -> ReLU -> Linear(H, E) on the module's own input.
struct CgmGate {
    at::Tensor lin1_weight, lin1_bias, output_weight, output_bias;  // float32
    at::Tensor logits(const at::Tensor & x) const;                   // [..., d_in] -> [..., E] float32

    // nn.Linear's init for both layers (drawn from `gen` in the order above), trainable, on `device`.
    static CgmGate fresh(int64_t d_in, int64_t hidden, int64_t experts, at::Generator & gen, c10::Device device);
};

// Per module, the gate weights of every example seen while enabled: [B, E] per forward. With
// keep_live, training passes also keep each gated module's per-example weights [B, E] with their
// graph, for penalties on them (take_penalty).
struct GateLog {
    bool                                           enabled = false;
    std::map<std::string, std::vector<at::Tensor>> batches;
    bool                                           keep_live = false;
    std::vector<at::Tensor>                        live;
};

// The expert each row of a batch runs through, set per batch by an output-level mixture:
// weights [N, 1, E], one-hot rows (a zero row: the base alone).
struct RowRouting {
    at::Tensor weights;
};

class MixtureLayer : public LinearAdapter {
  public:
    MixtureLayer(std::string path, ExpertStack stack, std::shared_ptr<CgmGate> gate, at::Tensor fixed_weights,
                 MixMode mode, GateLog * log, std::shared_ptr<const RowRouting> rows = nullptr);
    at::Tensor delta(const at::Tensor & x, const AdapterCall & call) const override;
    bool       needs_whole_sequence() const override { return gate_ != nullptr; }

  private:
    at::Tensor example_weights(const at::Tensor & x, const AdapterCall & call) const;  // [B, 1|T, E]
    at::Tensor seed_delta(const at::Tensor & x, bool training) const;

    std::string              path_;
    ExpertStack              stack_;
    std::shared_ptr<CgmGate> gate_;
    at::Tensor               fixed_;  // [E] when there is no gate
    MixMode                  mode_;
    GateLog *                log_;
    std::shared_ptr<const RowRouting> rows_;  // output-level mixtures: each row's expert
};

struct ExpertSpec {
    std::string name;
    std::string dir;
};

// "NAME=DIR" -> {NAME, DIR}; an Error naming `flag` otherwise.
ExpertSpec parse_expert_spec(const std::string & text, const std::string & flag = "--expert");

class LoraMixture {
  public:
    // Loads every expert (PEFT adapter folder) against the model's modules and stacks them.
    LoraMixture(const std::vector<NamedLinear> & modules, std::vector<ExpertSpec> experts, c10::ScalarType dtype);
    // The attached layers point at this mixture's log: it stays where it was built.
    LoraMixture(const LoraMixture &)             = delete;
    LoraMixture & operator=(const LoraMixture &) = delete;
    LoraMixture(LoraMixture &&)                  = delete;
    LoraMixture & operator=(LoraMixture &&)      = delete;

    const std::vector<ExpertSpec> & experts() const { return experts_; }
    const std::vector<std::string> & gated_modules() const { return gated_; }
    const std::map<std::string, ExpertStack> & stacks() const { return stacks_; }
    int64_t                          num_experts() const { return static_cast<int64_t>(experts_.size()); }

    // A static mixture on every adapted module (one-hot: a single expert).
    void attach_fixed(const std::vector<double> & weights);
    // Folds a static mixture into the base weights (W <- W + sum_e w_e s_e B_e A_e) and detaches.
    void merge_fixed(const std::vector<double> & weights);
    // CGM gates on the adapted modules whose path matches `targets` (module names, suffix match
    // as LoRA's; empty: all), fresh (seeded) or from gate tensors; others get equal weights.
    void attach_cgm(MixMode mode, int64_t hidden, const std::vector<std::string> & targets, uint64_t seed);
    // Every adapted module runs each row through the expert `rows` names (output-level mixtures).
    void attach_rows(std::shared_ptr<const RowRouting> rows);
    // The penalties `w` asks for on the gate weights the last training passes kept (GateLog::keep_live),
    // averaged over the gated modules and passes; the kept weights are dropped. 0 when none were kept.
    at::Tensor take_penalty(const GateRegularisers & w);

    // Gate tensors under "<module>.context_gated_mixing.{lin1,output}.{weight,bias}".
    NamedTensors gate_parameters() const;
    // The stacked experts under "<module>.experts.{A_cat,B_cat}"; trainable after train_experts().
    NamedTensors expert_parameters() const;
    void         train_experts();
    GateLog &    log() { return log_; }
    // Per input row of the module at `path`: the stacked experts' 2 R (d_in + d_out) and its
    // gate's products; 0 if no expert adapts it.
    double flops_per_row(const std::string & path) const;

  private:
    std::vector<NamedLinear>                       modules_;
    std::vector<ExpertSpec>                        experts_;
    std::map<std::string, ExpertStack>             stacks_;  // module path -> stacked experts
    std::vector<std::string>                       gated_;   // modules with a CGM gate, in model order
    std::map<std::string, std::shared_ptr<CgmGate>> gates_;
    MixMode                                        mode_ = MixMode::example;
    GateLog                                        log_;
};

}  // namespace cgm
