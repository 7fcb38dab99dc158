#pragma once
// What the model-FLOPs counts of every model share (t5_flops, beit_flops): 2 per multiply-add of
// each matrix product, what adapters add per row of the modules they sit on, and the training step
// that updates only the adapters.
#include "models/linear.h"

#include <cstdint>
#include <functional>
#include <string>

namespace cgm {

class FlopTally {
  public:
    explicit FlopTally(const AdapterFlops & adapter) : adapter_(adapter) {}

    double total() const { return total_; }

    // rows x [d_in] -> [d_out]
    void product(double rows, int64_t d_in, int64_t d_out) {
        total_ += 2.0 * rows * static_cast<double>(d_in) * static_cast<double>(d_out);
    }

    // The linear module at `path` on rows x [d_in] -> [d_out], plus its adapter.
    void linear(const std::string & path, double rows, int64_t d_in, int64_t d_out) {
        product(rows, d_in, d_out);
        total_ += adapter_ ? rows * adapter_(path) : 0.0;
    }

    // Scores Q K^T and mixing P V over `pairs` (query, key) positions, per example and head.
    void attention(int64_t batch, int64_t heads, int64_t head_size, double pairs) {
        total_ += 2.0 * 2.0 * static_cast<double>(batch * heads * head_size) * pairs;
    }

  private:
    const AdapterFlops & adapter_;
    double               total_ = 0.0;
};

// A training step that updates only the adapters, from `forward` (the forward's FLOPs with the
// given adapters): the forward, the backward's input gradients (as many FLOPs as the forward) and
// the adapters' weight gradients (as many as their forward).
inline double adapter_train_step_flops(const std::function<double(const AdapterFlops &)> & forward,
                                       const AdapterFlops &                                 adapter) {
    const double with_adapters = forward(adapter);
    const double adapters_only = with_adapters - forward({});
    return 2.0 * with_adapters + adapters_only;
}

}  // namespace cgm
