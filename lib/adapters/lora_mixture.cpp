#include "adapters/lora_mixture.h"

#include "core/error.h"
#include "core/random.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

namespace cgm {
namespace {

// [B, T, 1] float: 1 at the real positions of x's sequence (all of them without a mask).
at::Tensor real_positions(const AdapterCall & call, const at::Tensor & like) {
    return call.mask ? call.mask->to(like.dtype()).unsqueeze(-1) : at::ones_like(like.select(-1, 0)).unsqueeze(-1);
}

}  // namespace

MixMode parse_mix_mode(const std::string & name) {
    if (name == "seed") {
        return MixMode::seed;
    }
    if (name == "example") {
        return MixMode::example;
    }
    if (name == "output") {
        return MixMode::output;
    }
    fail("--mix", "unknown mix mode '" + name + "' (expected example, seed or output)");
}

std::string mix_mode_name(MixMode mode) {
    switch (mode) {
        case MixMode::seed: return "seed";
        case MixMode::output: return "output";
        case MixMode::example: break;
    }
    return "example";
}

ExpertSpec parse_expert_spec(const std::string & text, const std::string & flag) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
        fail(flag, "'" + text + "' is not NAME=DIR");
    }
    return { text.substr(0, eq), text.substr(eq + 1) };
}

at::Tensor ExpertStack::apply(const at::Tensor & x, const at::Tensor & weights) const {
    const at::Tensor h      = at::linear(x, cast_like(A_cat, x));                          // [B, T, R]
    const at::Tensor g_rows = weights.index_select(-1, row_expert) * row_scaling;       // [..., R]
    return at::linear(h * cast_like(g_rows, h), cast_like(B_cat, x));                   // [B, T, d_out]
}

at::Tensor CgmGate::logits(const at::Tensor & x) const {
    const at::Tensor hidden = at::relu(at::linear(x.to(at::kFloat), lin1_weight, lin1_bias));  // [..., H]
    return at::linear(hidden, output_weight, output_bias);                                    // [..., E]
}

CgmGate CgmGate::fresh(int64_t d_in, int64_t hidden, int64_t experts, at::Generator & gen, c10::Device device) {
    CgmGate g;
    g.lin1_weight   = uniform_fan_in({ hidden, d_in }, d_in, gen);
    g.lin1_bias     = uniform_fan_in({ hidden }, d_in, gen);
    g.output_weight = uniform_fan_in({ experts, hidden }, hidden, gen);
    g.output_bias   = uniform_fan_in({ experts }, hidden, gen);
    for (at::Tensor * t : { &g.lin1_weight, &g.lin1_bias, &g.output_weight, &g.output_bias }) {
        *t = t->to(device).requires_grad_(true);
    }
    return g;
}

MixtureLayer::MixtureLayer(std::string path, ExpertStack stack, std::shared_ptr<CgmGate> gate, at::Tensor fixed_weights,
                           MixMode mode, GateLog * log, std::shared_ptr<const RowRouting> rows)
    : path_(std::move(path)), stack_(std::move(stack)), gate_(std::move(gate)), fixed_(std::move(fixed_weights)),
      mode_(mode), log_(log), rows_(std::move(rows)) {}

at::Tensor MixtureLayer::example_weights(const at::Tensor & x, const AdapterCall & call) const {
    const at::Tensor z = gate_->logits(x);  // [B, T, E]
    at::Tensor       p;
    if (call.causal) {
        // Decoder side: position t averages the gate logits of positions <= t, carrying the sum
        // of earlier steps in the decoding state, so cached and full decoding agree.
        at::Tensor sums = at::cumsum(z, 1);  // [B, T, E]
        if (call.offset > 0) {
            if (call.state == nullptr || !call.state->defined()) {
                throw Error(path_ + ": incremental decoding without the gate's running state");
            }
            sums = sums + call.state->unsqueeze(1);
        }
        if (call.state != nullptr) {
            *call.state = sums.select(1, sums.size(1) - 1).detach();
        }
        const at::Tensor count = at::arange(call.offset + 1, call.offset + z.size(1) + 1, z.options());  // [T]
        p = at::softmax(sums / count.view({ 1, -1, 1 }), -1);  // [B, T, E]
    } else {
        // Masked mean over the real tokens: one weight vector per example, whatever the batch.
        const at::Tensor m = real_positions(call, z);
        p = at::softmax((z * m).sum(1) / m.sum(1).clamp_min(1.0), -1).unsqueeze(1);  // [B, 1, E]
    }
    const bool logged = log_ != nullptr && log_->enabled;
    const bool live   = log_ != nullptr && log_->keep_live && call.training;
    if (logged || live) {
        // The example's weights averaged over its real positions: [B, E]
        const at::Tensor m       = real_positions(call, z);
        const at::Tensor example = (p * m).sum(1) / m.sum(1).clamp_min(1.0);
        if (logged) {
            log_->batches[path_].push_back(example.detach().to(at::kCPU));
        }
        if (live) {
            log_->live.push_back(example);
        }
    }
    return p;
}

at::Tensor MixtureLayer::seed_delta(const at::Tensor & x, bool training) const {
    // The seed: logits averaged over the sequence (padding included), softmax, averaged over the
    // batch; A and B mixed separately, so cross-expert terms B_i A_j appear.
    const at::Tensor per_example = at::softmax(gate_->logits(x).mean(1), -1);  // [B, E]
    const at::Tensor c           = per_example.mean(0);                         // [E]
    if (log_ != nullptr && log_->keep_live && training) {
        log_->live.push_back(per_example);
    }
    if (log_ != nullptr && log_->enabled) {
        log_->batches[path_].push_back(c.detach().to(at::kCPU).unsqueeze(0).expand({ x.size(0), -1 }));
    }
    const auto       n     = static_cast<int64_t>(stack_.experts.size());
    const int64_t    r     = stack_.ranks.front();
    const at::Tensor c_here = c.index_select(0, stack_.expert_index);  // [n]
    const at::Tensor a_mix = (c_here.view({ n, 1, 1 }) * stack_.A_cat.view({ n, r, -1 })).sum(0);   // [r, d_in]
    const at::Tensor b_mix = (stack_.B_cat.view({ stack_.B_cat.size(0), n, r }) * c_here.view({ 1, n, 1 })).sum(1);  // [d_out, r]
    // One s for every expert (attach_cgm checks it), known on the host: no device sync per module.
    return at::linear(at::linear(x, cast_like(a_mix, x)), cast_like(b_mix, x)) * stack_.scalings.front();
}

at::Tensor MixtureLayer::delta(const at::Tensor & x, const AdapterCall & call) const {
    if (rows_) {
        if (!rows_->weights.defined() || rows_->weights.size(0) != x.size(0)) {
            throw Error(path_ + ": the output mixture routed " +
                        (rows_->weights.defined() ? std::to_string(rows_->weights.size(0)) : std::string("no")) +
                        " rows, the input has " + std::to_string(x.size(0)));
        }
        return stack_.apply(x, rows_->weights);
    }
    if (!gate_) {
        return stack_.apply(x, fixed_.to(x.device()));
    }
    if (mode_ == MixMode::seed) {
        return seed_delta(x, call.training);
    }
    return stack_.apply(x, example_weights(x, call));
}

ExpertStack stack_experts(const std::vector<ModuleExpert> & experts) {
    if (experts.empty()) {
        throw Error("stack_experts: no expert adapts this module");
    }
    ExpertStack             s;
    std::vector<at::Tensor> as, bs, rows, scales;
    for (const auto & e : experts) {
        const int64_t r = e.A.size(0);
        as.push_back(e.A);
        bs.push_back(e.B);
        rows.push_back(at::full({ r }, e.expert, at::kLong));
        scales.push_back(at::full({ r }, e.scaling, at::kFloat));
        s.experts.push_back(e.expert);
        s.ranks.push_back(r);
        s.scalings.push_back(e.scaling);
    }
    const auto device = as.front().device();
    s.A_cat           = at::cat(as, 0);                                // [R, d_in]
    s.B_cat           = at::cat(bs, 1);                                // [d_out, R]
    s.row_expert      = at::cat(rows).to(device);                      // [R]
    s.row_scaling     = at::cat(scales).to(device);                    // [R]
    s.expert_index    = at::tensor(s.experts, at::kLong).to(device);  // [n]
    return s;
}

LoraMixture::LoraMixture(const std::vector<NamedLinear> & modules, std::vector<ExpertSpec> experts, c10::ScalarType dtype)
    : modules_(modules), experts_(std::move(experts)) {
    if (experts_.empty()) {
        throw Error("--expert: give at least one NAME=DIR");
    }
    // Per module, the (expert, layer) pairs that adapt it, in expert order.
    std::map<std::string, std::vector<std::pair<int64_t, std::shared_ptr<LoraLayer>>>> by_module;
    for (size_t e = 0; e < experts_.size(); ++e) {
        for (size_t other = 0; other < e; ++other) {
            if (experts_[other].name == experts_[e].name) {
                fail("--expert", "two experts are named '" + experts_[e].name + "'");
            }
        }
        const LoraAdapter adapter = load_lora(experts_[e].dir, modules_, dtype);
        if (!adapter.saved.empty()) {
            fail(experts_[e].dir, "saves whole modules (modules_to_save, e.g. '" + adapter.saved.front().first +
                                      "'); a mixture mixes LoRA deltas only: train the experts with --modules-to-save '' "
                                      "(and the head in --targets)");
        }
        for (const auto & [path, layer] : adapter.layers) {
            by_module[path].emplace_back(static_cast<int64_t>(e), layer);
        }
    }
    for (const auto & [path, layers] : by_module) {
        std::vector<ModuleExpert> present;
        for (const auto & [e, layer] : layers) {
            present.push_back({ e, layer->A, layer->B, layer->scaling });
        }
        stacks_.emplace(path, stack_experts(present));
    }
}

void LoraMixture::attach_fixed(const std::vector<double> & weights) {
    if (static_cast<int64_t>(weights.size()) != num_experts()) {
        fail("--fixed-weights", std::to_string(weights.size()) + " weights for " + std::to_string(num_experts()) + " experts");
    }
    const at::Tensor w = at::tensor(weights, at::kDouble).to(at::kFloat);
    for (const auto & m : modules_) {
        const auto it = stacks_.find(m.path);
        if (it != stacks_.end()) {
            m.linear->adapter = std::make_shared<MixtureLayer>(m.path, it->second, nullptr, w, mode_, &log_);
        }
    }
}

void LoraMixture::merge_fixed(const std::vector<double> & weights) {
    attach_fixed(weights);
    c10::NoGradGuard no_grad;
    const at::Tensor w = at::tensor(weights, at::kDouble).to(at::kFloat);
    for (const auto & m : modules_) {
        const auto it = stacks_.find(m.path);
        if (it == stacks_.end()) {
            continue;
        }
        const ExpertStack & s      = it->second;
        const at::Tensor    g_rows = (w.to(s.row_scaling.device()).index_select(0, s.row_expert) * s.row_scaling);  // [R]
        const at::Tensor    delta  = at::matmul(s.B_cat.to(at::kFloat) * g_rows, s.A_cat.to(at::kFloat));       // [d_out, d_in]
        m.linear->weight          = (m.linear->weight.to(at::kFloat) + delta).to(m.linear->weight.scalar_type());
        m.linear->adapter.reset();
    }
}

void LoraMixture::attach_cgm(MixMode mode, int64_t hidden, const std::vector<std::string> & targets, uint64_t seed) {
    if (hidden <= 0) {
        fail("--gate-hidden", "must be positive");
    }
    mode_ = mode;
    gated_.clear();
    gates_.clear();
    at::Generator    gen   = at::make_generator<at::CPUGeneratorImpl>(seed);
    const int64_t    n     = num_experts();
    const at::Tensor equal = at::full({ n }, 1.0 / static_cast<double>(n), at::kFloat);
    for (const auto & m : modules_) {
        const auto it = stacks_.find(m.path);
        if (it == stacks_.end()) {
            continue;
        }
        const ExpertStack & s = it->second;
        if (!targets.empty() && !module_matches(m.path, targets)) {
            m.linear->adapter = std::make_shared<MixtureLayer>(m.path, s, nullptr, equal, mode, &log_);
            continue;
        }
        const bool uniform = static_cast<int64_t>(s.experts.size()) == n &&
                             std::all_of(s.ranks.begin(), s.ranks.end(), [&](int64_t r) { return r == s.ranks[0]; }) &&
                             std::all_of(s.scalings.begin(), s.scalings.end(), [&](double v) { return v == s.scalings[0]; });
        if (mode == MixMode::seed && !uniform) {
            fail("--mix seed", "module " + m.path + ": the seed mixes A and B separately, which needs every expert on "
                               "every gated module with the same rank and alpha");
        }
        const auto gate = std::make_shared<CgmGate>(CgmGate::fresh(m.linear->weight.size(1), hidden, n, gen, m.linear->weight.device()));
        gates_[m.path] = gate;
        gated_.push_back(m.path);
        m.linear->adapter = std::make_shared<MixtureLayer>(m.path, s, gate, at::Tensor(), mode, &log_);
    }
    if (gated_.empty()) {
        fail("--gate-targets", "matches no module that has experts");
    }
}

void LoraMixture::attach_rows(std::shared_ptr<const RowRouting> rows) {
    mode_ = MixMode::output;
    for (const auto & m : modules_) {
        const auto it = stacks_.find(m.path);
        if (it != stacks_.end()) {
            m.linear->adapter = std::make_shared<MixtureLayer>(m.path, it->second, nullptr, at::Tensor(), mode_, &log_, rows);
        }
    }
}

at::Tensor LoraMixture::take_penalty(const GateRegularisers & w) {
    std::vector<at::Tensor> live;
    live.swap(log_.live);
    if (live.empty()) {
        return at::zeros({});
    }
    at::Tensor total = gate_penalty(w, live.front(), {}, {});
    for (size_t i = 1; i < live.size(); ++i) {
        total = total + gate_penalty(w, live[i], {}, {});
    }
    return total / static_cast<double>(live.size());
}

double LoraMixture::flops_per_row(const std::string & path) const {
    const auto stack = stacks_.find(path);
    if (stack == stacks_.end()) {
        return 0.0;
    }
    const at::Tensor & a     = stack->second.A_cat;  // [R, d_in]
    double             flops = 2.0 * static_cast<double>(a.size(0) * (a.size(1) + stack->second.B_cat.size(0)));
    const auto         gate  = gates_.find(path);
    if (gate != gates_.end()) {
        flops += 2.0 * static_cast<double>(gate->second->lin1_weight.numel() + gate->second->output_weight.numel());
    }
    return flops;
}

NamedTensors LoraMixture::gate_parameters() const {
    NamedTensors out;
    for (const auto & path : gated_) {
        const CgmGate &   g = *gates_.at(path);
        const std::string p = path + ".context_gated_mixing.";
        out.emplace_back(p + "lin1.weight", g.lin1_weight);
        out.emplace_back(p + "lin1.bias", g.lin1_bias);
        out.emplace_back(p + "output.weight", g.output_weight);
        out.emplace_back(p + "output.bias", g.output_bias);
    }
    return out;
}

NamedTensors LoraMixture::expert_parameters() const {
    NamedTensors out;
    for (const auto & [path, s] : stacks_) {
        out.emplace_back(path + ".experts.A_cat", s.A_cat);
        out.emplace_back(path + ".experts.B_cat", s.B_cat);
    }
    return out;
}

void LoraMixture::train_experts() {
    for (auto & [path, s] : stacks_) {
        s.A_cat.requires_grad_(true);
        s.B_cat.requires_grad_(true);
    }
}

}  // namespace cgm
