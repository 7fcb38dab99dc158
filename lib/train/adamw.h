#pragma once
// AdamW exactly as torch.optim.AdamW (decoupled weight decay, bias-corrected moments), with its
// state as named tensors so checkpoints stay in safetensors.
#include "io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace cgm {

struct AdamWOptions {
    double beta1        = 0.9;
    double beta2        = 0.999;
    double eps          = 1e-8;
    double weight_decay = 0.0;
};

class AdamW {
  public:
    AdamW(std::vector<at::Tensor> params, AdamWOptions options);

    // One update with learning rate lr from each parameter's .grad() (parameters without a
    // gradient are skipped, as in torch).
    void    step(double lr);
    void    zero_grad();
    int64_t steps() const { return steps_; }
    void    set_steps(int64_t n) { steps_ = n; }  // with the moments of another copy (a resumed run's rank 0)

    // "adamw.step", "adamw.<i>.exp_avg", "adamw.<i>.exp_avg_sq"
    NamedTensors state() const;
    void         load_state(const SafetensorsReader & file);

  private:
    std::vector<at::Tensor> params_, exp_avg_, exp_avg_sq_;
    AdamWOptions            options_;
    int64_t                 steps_ = 0;
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before.
double clip_grad_norm(const std::vector<at::Tensor> & params, double max_norm);

}  // namespace cgm
