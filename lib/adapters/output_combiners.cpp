#include "adapters/output_combiners.h"

#include "core/error.h"

#include <ATen/ATen.h>

namespace cgm {

namespace {

// p [B, E] as a factor over z [E, B, ...]: [E, B, 1, ..., 1].
at::Tensor per_expert(const at::Tensor & p, const at::Tensor & z) {
    std::vector<int64_t> shape(static_cast<size_t>(z.dim()), 1);
    shape[0] = p.size(1);
    shape[1] = p.size(0);
    return p.t().reshape(shape);
}

}  // namespace

Combiner parse_combiner(const std::string & name) {
    if (name == "expectation") {
        return Combiner::expectation;
    }
    if (name == "pre-softmax") {
        return Combiner::pre_softmax;
    }
    if (name == "top-k") {
        return Combiner::top_k;
    }
    if (name == "stochastic") {
        return Combiner::stochastic;
    }
    if (name == "loss-gate") {
        return Combiner::loss_gate;
    }
    fail("--combiner", "unknown combiner '" + name + "' (expected expectation, pre-softmax, top-k, stochastic or loss-gate)");
}

std::string combiner_name(Combiner c) {
    switch (c) {
        case Combiner::expectation: return "expectation";
        case Combiner::pre_softmax: return "pre-softmax";
        case Combiner::top_k: return "top-k";
        case Combiner::stochastic: return "stochastic";
        case Combiner::loss_gate: return "loss-gate";
    }
    return "expectation";
}

at::Tensor gate_probabilities(const at::Tensor & logits, double temperature, GateTransform transform) {
    const at::Tensor x = logits / temperature;  // [B, E]
    if (transform == GateTransform::softmax) {
        return at::softmax(x, -1);
    }
    const at::Tensor sq = x.pow(2);
    return sq / sq.sum(-1, /*keepdim=*/true).clamp_min(1e-30);
}

at::Tensor expectation_log_probs(const at::Tensor & z, const at::Tensor & p) {
    // logsumexp over experts of log p_e + log softmax(z_e): the expectation without underflow.
    return at::logsumexp(per_expert(p, z).clamp_min(1e-30).log() + at::log_softmax(z, -1), 0);  // [B, ..., C]
}

at::Tensor pre_softmax_logits(const at::Tensor & z, const at::Tensor & p) {
    return (per_expert(p, z) * z).sum(0);
}

at::Tensor top_k_renormalised(const at::Tensor & p, int64_t k) {
    const at::Tensor index = std::get<1>(p.topk(k, -1));                           // [B, k]
    const at::Tensor kept  = at::zeros_like(p).scatter(-1, index, p.gather(-1, index));
    return kept / kept.sum(-1, /*keepdim=*/true);
}

at::Tensor select_expert(const at::Tensor & z, const at::Tensor & expert) {
    const int64_t    b    = z.size(1);
    const at::Tensor rows = expert.to(z.device()) * b + at::arange(b, expert.options().device(z.device()));  // [B]
    std::vector<int64_t> flat(z.sizes().begin() + 1, z.sizes().end());
    flat[0] = -1;
    return z.reshape(flat).index_select(0, rows);
}

at::Tensor top_1_scaled_probs(const at::Tensor & z, const at::Tensor & p) {
    const at::Tensor best   = p.argmax(-1);                                  // [B]
    const at::Tensor weight = p.gather(-1, best.unsqueeze(-1)).squeeze(-1);  // [B]
    const at::Tensor probs  = at::softmax(select_expert(z, best), -1);       // [B, ..., C]
    std::vector<int64_t> shape(static_cast<size_t>(probs.dim()), 1);
    shape[0] = -1;
    return weight.view(shape) * probs;
}

at::Tensor mixture_nll(const at::Tensor & logits, const at::Tensor & labels) {
    return at::cross_entropy_loss(logits.reshape({ -1, logits.size(-1) }), labels.reshape({ -1 }).to(logits.device()), {},
                                  at::Reduction::Mean, /*ignore_index=*/-100);
}

at::Tensor expert_nll(const at::Tensor & z, const at::Tensor & labels) {
    const int64_t    e      = z.size(0), b = z.size(1);
    const at::Tensor target = labels.to(z.device()).reshape({ 1, b, -1 }).expand({ e, b, -1 });           // [E, B, T]
    const at::Tensor valid  = target.ne(-100);
    const at::Tensor logp   = at::log_softmax(z.reshape({ e, b, -1, z.size(-1) }), -1);                   // [E, B, T, C]
    const at::Tensor token  = -logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid;   // [E, B, T]
    return token.sum(-1) / valid.sum(-1).clamp_min(1);                                                   // [E, B]
}

at::Tensor jacobs_loss(const at::Tensor & p, const at::Tensor & nll) {
    return -((p * (-0.5 * nll.t()).exp()).sum(-1) + 1e-15).log().mean();
}

at::Tensor loss_gate_regression(const at::Tensor & gate_logits, const at::Tensor & nll) {
    return (gate_logits + nll.detach().t()).abs().mean(0).sum();
}

}  // namespace cgm
