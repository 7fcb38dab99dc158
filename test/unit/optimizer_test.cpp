// AdamW and gradient clipping against torch's semantics, written out by hand: clip_grad_norm_
// (total L2 norm, coefficient max_norm/(norm+1e-6) applied only when below 1) and
// torch.optim.AdamW (bias-corrected moments, decoupled weight decay, eps outside the sqrt).
#include "core/error.h"
#include "io/safetensors.h"
#include "support/temp_dir.h"
#include "train/adamw.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

using namespace cgm;
using namespace cgm::test;

namespace {

// A leaf parameter holding `values` (float64, so the hand computation below is matched to ~1e-15).
at::Tensor param(const std::vector<double> & values) {
    return at::tensor(values, at::kDouble).requires_grad_(true);
}

void set_grad(at::Tensor & p, const std::vector<double> & g) {
    p.mutable_grad() = at::tensor(g, at::kDouble);
}

std::vector<double> values(const at::Tensor & t) {
    const at::Tensor c = t.detach().to(at::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// torch.optim.AdamW for one tensor, step by step, on plain doubles.
struct HandAdamW {
    double              lr, beta1, beta2, eps, wd;
    std::vector<double> p, m, v;
    int                 t = 0;

    void step(const std::vector<double> & g) {
        ++t;
        const double bc1 = 1.0 - std::pow(beta1, t);
        const double bc2 = 1.0 - std::pow(beta2, t);
        for (size_t i = 0; i < p.size(); ++i) {
            p[i] *= 1.0 - lr * wd;  // decoupled weight decay, before the Adam update
            m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
            const double m_hat = m[i] / bc1;
            const double v_hat = v[i] / bc2;
            p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);  // eps outside the sqrt
        }
    }
};

void require_values(const at::Tensor & actual, const std::vector<double> & expected, double tol) {
    const std::vector<double> a = values(actual);
    REQUIRE(a.size() == expected.size());
    for (size_t i = 0; i < a.size(); ++i) {
        INFO("element " << i << ": " << a[i] << " vs " << expected[i]);
        REQUIRE(std::abs(a[i] - expected[i]) <= tol);
    }
}

}  // namespace

TEST_CASE("clip_grad_norm returns the total L2 norm over all gradients and scales them by max/(norm+1e-6)", "[unit][optim]") {
    // Gradients [3, 0] and [[0], [4]] * 1e-4: total norm 5e-4 (not 3e-4 + 4e-4, not per tensor).
    at::Tensor a = param({ 1.0, 2.0 });
    at::Tensor b = param({ 3.0, 4.0 }).view({ 2, 1 }).detach().requires_grad_(true);
    at::Tensor c = param({ 7.0 });  // no gradient: skipped
    set_grad(a, { 3e-4, 0.0 });
    b.mutable_grad() = at::tensor({ 0.0, 4e-4 }, at::kDouble).view({ 2, 1 });
    const double norm = clip_grad_norm({ a, b, c }, 1e-4);
    REQUIRE(norm == Approx(5e-4).epsilon(1e-6));
    // The coefficient has torch's 1e-6 in the denominator: at these sizes it is 0.2% below 0.2.
    // (The norm is summed in float32: ~1e-7 relative, far below the 2e-3 of that 1e-6.)
    const double coef = 1e-4 / (5e-4 + 1e-6);
    require_values(a.grad(), { 3e-4 * coef, 0.0 }, 1e-10);
    require_values(b.grad(), { 0.0, 4e-4 * coef }, 1e-10);
    REQUIRE(!c.grad().defined());
    // The clipped gradients have norm max_norm / (1 + 1e-6 / norm).
    REQUIRE(std::hypot(3e-4 * coef, 4e-4 * coef) == Approx(1e-4 / (1.0 + 1e-6 / 5e-4)).epsilon(1e-9));
}

TEST_CASE("clip_grad_norm leaves gradients under max_norm, or with max_norm 0, unchanged and still returns the norm", "[unit][optim]") {
    for (const double max_norm : { 10.0, 0.0 }) {
        INFO("max_norm " << max_norm);
        at::Tensor a = param({ 1.0, 2.0, 3.0 });
        at::Tensor b = param({ -1.0 });
        set_grad(a, { 1.0, -2.0, 2.0 });
        set_grad(b, { 4.0 });
        const double norm = clip_grad_norm({ a, b }, max_norm);
        REQUIRE(norm == Approx(5.0).epsilon(1e-6));  // sqrt(1 + 4 + 4 + 16)
        require_values(a.grad(), { 1.0, -2.0, 2.0 }, 0.0);
        require_values(b.grad(), { 4.0 }, 0.0);
    }
    // A norm of 5 with max_norm 4 is clipped: 4 / (5 + 1e-6).
    at::Tensor a = param({ 0.0, 0.0 });
    set_grad(a, { 3.0, 4.0 });
    REQUIRE(clip_grad_norm({ a }, 4.0) == Approx(5.0).epsilon(1e-6));
    require_values(a.grad(), { 3.0 * 4.0 / (5.0 + 1e-6), 4.0 * 4.0 / (5.0 + 1e-6) }, 1e-12);
    // No gradient anywhere: norm 0, nothing to do.
    at::Tensor none = param({ 1.0 });
    REQUIRE(clip_grad_norm({ none }, 1.0) == 0.0);
}

TEST_CASE("AdamW: one and two steps equal torch's formulas (bias correction, decoupled decay, eps outside sqrt)", "[unit][optim]") {
    // Non-default betas (so swapping them shows), a large eps next to gradients of the same size
    // (so where eps goes shows), and weight decay.
    AdamWOptions options;
    options.beta1        = 0.8;
    options.beta2        = 0.95;
    options.eps          = 1e-3;
    options.weight_decay = 0.1;
    const double lr      = 0.05;
    const std::vector<double> p0 = { 1.0, -2.0, 0.5, 0.0 };
    const std::vector<double> g1 = { 2e-3, -1e-3, 5e-4, 0.0 };
    const std::vector<double> g2 = { -1e-3, 3e-3, 5e-4, 1e-3 };

    at::Tensor p     = param(p0);
    at::Tensor other = param({ 3.0, 4.0 });  // never gets a gradient: never changes
    AdamW      optimizer({ p, other }, options);
    HandAdamW  hand{ lr, options.beta1, options.beta2, options.eps, options.weight_decay, p0, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } };

    set_grad(p, g1);
    optimizer.step(lr);
    hand.step(g1);
    REQUIRE(optimizer.steps() == 1);
    require_values(p, hand.p, 1e-13);
    // Step 1 by hand for element 0: m_hat = g, v_hat = g^2, so p = p0 (1 - lr wd) - lr g / (|g| + eps).
    REQUIRE(values(p)[0] == Approx(1.0 * (1.0 - 0.05 * 0.1) - 0.05 * 2e-3 / (2e-3 + 1e-3)).epsilon(1e-12));
    // A zero weight with a zero gradient stays 0 (0 / (0 + eps)).
    REQUIRE(values(p)[3] == 0.0);

    optimizer.zero_grad();
    REQUIRE(!p.grad().defined());
    set_grad(p, g2);
    optimizer.step(lr);
    hand.step(g2);
    REQUIRE(optimizer.steps() == 2);
    require_values(p, hand.p, 1e-13);
    require_values(other, { 3.0, 4.0 }, 0.0);

    // The state holds the step and both moments under their documented names.
    const NamedTensors state = optimizer.state();
    REQUIRE(state.size() == 5);
    REQUIRE(state[0].first == "adamw.step");
    REQUIRE(state[0].second.item<int64_t>() == 2);
    REQUIRE(state[1].first == "adamw.0.exp_avg");
    REQUIRE(state[2].first == "adamw.0.exp_avg_sq");
    require_values(state[1].second, hand.m, 1e-15);
    require_values(state[2].second, hand.v, 1e-15);
}

TEST_CASE("AdamW: the learning rate passed to step() is the one used, weight decay scales with it", "[unit][optim]") {
    // Zero gradient: only the decoupled decay p *= 1 - lr * wd acts (then m = v = 0).
    AdamWOptions options;
    options.weight_decay = 0.5;
    at::Tensor p         = param({ 2.0, -4.0 });
    AdamW      optimizer({ p }, options);
    set_grad(p, { 0.0, 0.0 });
    optimizer.step(0.1);
    require_values(p, { 2.0 * 0.95, -4.0 * 0.95 }, 1e-15);
    optimizer.step(0.2);
    require_values(p, { 2.0 * 0.95 * 0.9, -4.0 * 0.95 * 0.9 }, 1e-15);
}

TEST_CASE("AdamW: state saved after two steps and loaded into a fresh optimizer continues identically", "[unit][optim]") {
    AdamWOptions options;
    options.beta1        = 0.7;
    options.beta2        = 0.9;
    options.eps          = 1e-4;
    options.weight_decay = 0.01;
    const std::vector<std::vector<double>> grads = { { 1e-3, -2e-4, 3e-4 }, { -5e-4, 1e-3, 1e-4 }, { 2e-4, 2e-4, -1e-3 } };

    // Uninterrupted: three steps.
    at::Tensor p = param({ 0.5, 1.5, -1.0 });
    AdamW      full({ p }, options);
    for (const auto & g : grads) {
        set_grad(p, g);
        full.step(0.1);
        full.zero_grad();
    }

    // Two steps, state to a file, a new optimizer (fresh moments) on a copy of the weights.
    TempDir    dir;
    at::Tensor q = param({ 0.5, 1.5, -1.0 });
    {
        AdamW first({ q }, options);
        for (size_t i = 0; i < 2; ++i) {
            set_grad(q, grads[i]);
            first.step(0.1);
            first.zero_grad();
        }
        write_safetensors(dir.file("adamw.safetensors"), first.state());
    }
    at::Tensor r = q.detach().clone().requires_grad_(true);
    AdamW      second({ r }, options);
    second.load_state(SafetensorsReader(dir.file("adamw.safetensors")));
    REQUIRE(second.steps() == 2);
    set_grad(r, grads[2]);
    second.step(0.1);
    REQUIRE(second.steps() == 3);
    REQUIRE(at::equal(r, p));  // bit-identical: same operations on the same values

    // Without the state the third step differs (the check above can fail).
    at::Tensor s = q.detach().clone().requires_grad_(true);
    AdamW      fresh({ s }, options);
    set_grad(s, grads[2]);
    fresh.step(0.1);
    REQUIRE(!at::allclose(s, p, 0.0, 1e-9));
}

TEST_CASE("AdamW: loading optimizer state of another shape is an error naming the file", "[unit][optim]") {
    TempDir    dir;
    at::Tensor a = param({ 1.0, 2.0, 3.0 });
    AdamW      small({ a }, AdamWOptions{});
    write_safetensors(dir.file("state.safetensors"), small.state());
    at::Tensor b = param({ 1.0, 2.0 });
    AdamW      other({ b }, AdamWOptions{});
    REQUIRE_THROWS_WITH(other.load_state(SafetensorsReader(dir.file("state.safetensors"))),
                        Catch::Matchers::Contains(dir.file("state.safetensors")) &&
                            Catch::Matchers::Contains("adamw.0.exp_avg"));
}
