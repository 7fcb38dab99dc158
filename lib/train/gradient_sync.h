#pragma once
// Sums the trainable parameters' gradients over the processes of a data-parallel run, as
// PyTorch's DistributedDataParallel does: parameters are grouped into buckets (in reverse order,
// the order backward reaches them), and a bucket's all-reduce starts as soon as backward has
// produced all of its gradients, so communication overlaps the rest of the backward pass.
// Buckets start in the same order on every rank (a collective matches by order).
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace cgm {

class GradientSync {
  public:
    // Registers a gradient hook on every parameter (removed again by the destructor).
    explicit GradientSync(std::vector<at::Tensor> params, int64_t bucket_bytes = 25 << 20);
    ~GradientSync();
    GradientSync(const GradientSync &)             = delete;
    GradientSync & operator=(const GradientSync &) = delete;

    // The next backward pass is the step's last: its gradients (plus what .grad holds from the
    // step's earlier micro-batches) are reduced while it runs.
    void arm();

    // Starts the buckets not started yet (a rank without examples in this step runs no backward;
    // a gradient it lacks counts as zero), waits, and writes the sums to .grad; a parameter that
    // had a gradient on no rank keeps none (the optimizer skips it, as on one process). `extra`
    // (loss, flags) is summed along with them. Disarms.
    std::vector<double> finish(const std::vector<double> & extra);

    size_t buckets() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cgm
