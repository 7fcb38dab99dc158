// The gradient all-reduce of data-parallel training, on one process (where the sum is the identity):
// after finish() every gradient is what backward alone gives, over accumulated micro-batches,
// whatever the bucket size; a parameter without a gradient keeps none; extra figures pass through.
// (Two processes: test/cli/distributed_test.cpp.)
#include "train/gradient_sync.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;

namespace {

struct Net {
    std::vector<at::Tensor> params;
    Net() {
        at::manual_seed(3);
        for (int64_t n : { 6, 4, 9, 2 }) {
            params.push_back(at::randn({ n, 3 }).requires_grad_(true));
        }
    }
    // Uses every parameter but the last.
    at::Tensor loss(const at::Tensor & x) const {
        at::Tensor y = at::zeros({ 3 });
        for (size_t i = 0; i + 1 < params.size(); ++i) {
            y = y + (params[i] * x).sum(0).tanh();
        }
        return y.pow(2).sum();
    }
};

}  // namespace

TEST_CASE("gradient sync leaves one process's gradients as backward makes them", "[unit][dist]") {
    const at::Tensor x1 = at::randn({ 3 }), x2 = at::randn({ 3 });
    Net              plain;
    (plain.loss(x1) * 0.5).backward();
    (plain.loss(x2) * 0.5).backward();
    for (int64_t bucket_bytes : { int64_t{ 1 }, int64_t{ 150 }, int64_t{ 25 << 20 } }) {
        Net          net;
        GradientSync sync(net.params, bucket_bytes);
        REQUIRE(sync.buckets() == (bucket_bytes == 1 ? 4u : bucket_bytes == 150 ? 2u : 1u));  // 72, 48, 108, 24 bytes
        for (int round = 0; round < 2; ++round) {  // the buckets are reused step after step
            (net.loss(x1) * 0.5).backward();
            sync.arm();
            (net.loss(x2) * 0.5).backward();
            const std::vector<double> extra = sync.finish({ 1.5, -2.0 });
            REQUIRE(extra == std::vector<double>{ 1.5, -2.0 });
            for (size_t i = 0; i + 1 < net.params.size(); ++i) {
                REQUIRE(at::allclose(net.params[i].grad(), plain.params[i].grad(), 1e-6, 1e-7));
            }
            REQUIRE_FALSE(net.params.back().grad().defined());  // unused: no gradient, as without the sync
            for (auto & p : net.params) {
                p.mutable_grad() = at::Tensor();
            }
        }
    }
}

TEST_CASE("gradient sync with no backward in the step (a rank without examples)", "[unit][dist]") {
    Net          net;
    GradientSync sync(net.params);
    sync.arm();
    sync.finish({});
    for (const auto & p : net.params) {
        REQUIRE_FALSE(p.grad().defined());
    }
    // Gradients from the step's earlier micro-batches are kept.
    net.loss(at::ones({ 3 })).backward();
    const at::Tensor before = net.params[0].grad().clone();
    sync.arm();
    sync.finish({});
    REQUIRE(at::equal(net.params[0].grad(), before));
}
