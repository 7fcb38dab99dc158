#include "train/adamw.h"

#include "core/error.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

namespace cgm {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
    for (const auto & p : params_) {
        exp_avg_.push_back(at::zeros_like(p, p.options().requires_grad(false)));
        exp_avg_sq_.push_back(at::zeros_like(p, p.options().requires_grad(false)));
    }
}

void AdamW::step(double lr) {
    c10::NoGradGuard no_grad;
    ++steps_;
    const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
    const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
    for (size_t i = 0; i < params_.size(); ++i) {
        at::Tensor &     p = params_[i];
        const at::Tensor g = p.grad();
        if (!g.defined()) {
            continue;
        }
        p.mul_(1.0 - lr * options_.weight_decay);
        exp_avg_[i].mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
        exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
        const at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias2)).add_(options_.eps);
        p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
    }
}

void AdamW::zero_grad() {
    for (auto & p : params_) {
        if (p.grad().defined()) {
            p.mutable_grad() = at::Tensor();
        }
    }
}

NamedTensors AdamW::state() const {
    NamedTensors out{ { "adamw.step", at::scalar_tensor(steps_, at::kLong) } };
    for (size_t i = 0; i < params_.size(); ++i) {
        out.emplace_back("adamw." + std::to_string(i) + ".exp_avg", exp_avg_[i]);
        out.emplace_back("adamw." + std::to_string(i) + ".exp_avg_sq", exp_avg_sq_[i]);
    }
    return out;
}

void AdamW::load_state(const SafetensorsReader & file) {
    c10::NoGradGuard no_grad;
    steps_ = file.tensor("adamw.step").item<int64_t>();
    for (size_t i = 0; i < params_.size(); ++i) {
        for (auto * slot : { &exp_avg_[i], &exp_avg_sq_[i] }) {
            const std::string name = "adamw." + std::to_string(i) + (slot == &exp_avg_[i] ? ".exp_avg" : ".exp_avg_sq");
            const at::Tensor  t    = file.tensor(name);
            if (t.sizes() != slot->sizes()) {
                fail(file.path(), "optimizer state '" + name + "' has shape " + c10::str(t.sizes()) + ", expected " +
                                      c10::str(slot->sizes()));
            }
            slot->copy_(t);
        }
    }
}

double clip_grad_norm(const std::vector<at::Tensor> & params, double max_norm) {
    c10::NoGradGuard        no_grad;
    std::vector<at::Tensor> norms;
    for (const auto & p : params) {
        if (p.grad().defined()) {
            norms.push_back(p.grad().to(at::kFloat).norm());
        }
    }
    if (norms.empty()) {
        return 0.0;
    }
    const double total = at::stack(norms).norm().item<double>();
    if (max_norm > 0 && total > max_norm) {
        const double scale = max_norm / (total + 1e-6);
        for (const auto & p : params) {
            if (p.grad().defined()) {
                p.grad().mul_(scale);
            }
        }
    }
    return total;
}

}  // namespace cgm
