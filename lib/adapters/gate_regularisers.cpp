#include "adapters/gate_regularisers.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace cgm {

at::Tensor importance_cv2(const at::Tensor & p) {
    const at::Tensor importance = p.sum(0);  // [E]
    return (importance.std() / importance.mean()).pow(2);
}

at::Tensor sample_similarity(const at::Tensor & p, const at::Tensor & features, double same, double diff) {
    const auto       b    = static_cast<double>(p.size(0));
    const auto       e    = static_cast<double>(p.size(1));
    const at::Tensor f    = features.to(at::kFloat).flatten(1).detach();  // [B, F]
    at::Tensor       d    = at::cdist(f, f);                              // [B, B]
    const at::Tensor dmax = d.max();
    if (dmax.item<double>() > 0) {
        d = d / dmax;
    }
    const at::Tensor shared = at::matmul(p, p.t());                       // [B, B] sum_i p_i(n) p_i(m)
    const at::Tensor mass   = p.sum(1);                                   // [B]
    const at::Tensor other  = at::outer(mass, mass) - shared;             // [B, B] sum_{i != j} p_i(n) p_j(m)
    return same * (shared * d).sum() / e - diff * (other * d).sum() / (e * e - e) / (b * b);
}

at::Tensor ideal_gate_mse(const at::Tensor & p, const at::Tensor & nll) {
    const at::Tensor best = nll.detach().argmin(0);                             // [B]
    const at::Tensor ideal = at::one_hot(best, p.size(1)).to(p.scalar_type());  // [B, E]
    return (p - ideal).pow(2).mean();
}

at::Tensor mean_entropy(const at::Tensor & p) {
    return -(p * p.clamp_min(1e-30).log()).sum(1).mean();
}

at::Tensor gate_penalty(const GateRegularisers & w, const at::Tensor & p, const at::Tensor & features, const at::Tensor & nll) {
    at::Tensor total = at::zeros({}, p.options());
    if (w.importance != 0) {
        total = total + w.importance * importance_cv2(p);
    }
    if (w.sample_sim_same != 0 || w.sample_sim_diff != 0) {
        total = total + sample_similarity(p, features, w.sample_sim_same, w.sample_sim_diff);
    }
    if (w.ideal_gate != 0) {
        total = total + w.ideal_gate * ideal_gate_mse(p, nll);
    }
    if (w.entropy != 0) {
        total = total + w.entropy * mean_entropy(p);
    }
    return total;
}

double decayed_temperature(double t0, double decay, int64_t start, int64_t epoch) {
    double t = t0;
    if (decay == 0) {
        return t;
    }
    for (int64_t e = start + 1; e < epoch; ++e) {
        t = std::max(0.001, t / (1.0 + decay * static_cast<double>(e - start)));
    }
    return t;
}

}  // namespace cgm
