#include "support/row_counter.h"

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace cgm::test {

namespace {

// Adds nothing to the module's output; counts the rows of input it sees.
class RowCounter : public LinearAdapter {
  public:
    explicit RowCounter(int64_t d_out) : d_out_(d_out) {}
    at::Tensor delta(const at::Tensor & x, const AdapterCall &) const override {
        rows += static_cast<double>(x.numel() / x.size(-1));
        std::vector<int64_t> shape = x.sizes().vec();
        shape.back()               = d_out_;
        return at::zeros(shape, x.options());
    }
    mutable double rows = 0.0;

  private:
    int64_t d_out_;
};

}  // namespace

ExecutedRows count_executed_rows(AdaptableModel & model, const std::function<void()> & work) {
    std::map<std::string, std::shared_ptr<RowCounter>> counters;
    for (const auto & m : model.linear_modules()) {
        counters[m.path]  = std::make_shared<RowCounter>(m.linear->weight.size(0));
        m.linear->adapter = counters[m.path];
    }
    work();
    ExecutedRows out;
    for (const auto & m : model.linear_modules()) {
        out.rows[m.path] = counters[m.path]->rows;
        out.linear_flops += 2.0 * counters[m.path]->rows * static_cast<double>(m.linear->weight.numel());
        m.linear->adapter.reset();
    }
    return out;
}

}  // namespace cgm::test
