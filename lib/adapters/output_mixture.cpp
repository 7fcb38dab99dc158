#include "adapters/output_mixture.h"

#include "core/error.h"
#include "io/json_file.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

namespace cgm {

namespace {

const char * transform_name(GateTransform t) {
    return t == GateTransform::escort ? "escort" : "softmax";
}

const char * input_name(GateInput i) {
    return i == GateInput::base ? "base" : "embedding";
}

// The expert an example goes to when it goes to one: the loss-gate's logits regress the experts'
// log-likelihoods, so its best expert has the largest logit (the escort transform squares them);
// the others take the most probable expert.
at::Tensor chosen_expert_of(Combiner combiner, const at::Tensor & gate_logits, const at::Tensor & p) {
    return combiner == Combiner::loss_gate ? gate_logits.argmax(-1) : p.argmax(-1);  // [B]
}

// Whether evaluation runs each example through one expert only.
bool routes_one_expert(const OutputMixSettings & s) {
    return s.combiner == Combiner::stochastic || s.combiner == Combiner::loss_gate ||
           (s.combiner == Combiner::top_k && s.top_k == 1);
}

}  // namespace

nlohmann::json OutputMixSettings::to_json() const {
    return { { "combiner", combiner_name(combiner) },
             { "top_k", top_k },
             { "transform", transform_name(transform) },
             { "gate_input", input_name(input) },
             { "temperature", temperature },
             { "eval_temperature", eval_temperature },
             { "temperature_decay", temperature_decay },
             { "temperature_decay_start", temperature_decay_start },
             { "dual_temperature", dual_temperature },
             { "importance", regularisers.importance },
             { "sample_sim_same", regularisers.sample_sim_same },
             { "sample_sim_diff", regularisers.sample_sim_diff },
             { "ideal_gate", regularisers.ideal_gate },
             { "entropy", regularisers.entropy } };
}

OutputMixSettings OutputMixSettings::from_json(const nlohmann::json & j, const std::string & source) {
    OutputMixSettings s;
    try {
        const std::string combiner = j.at("combiner").get<std::string>();
        try {
            s.combiner = parse_combiner(combiner);
        } catch (const Error &) {
            fail(source, "output.combiner '" + combiner + "' is not expectation, pre-softmax, top-k, stochastic or loss-gate");
        }
        s.top_k       = j.value("top_k", int64_t{ 1 });
        const std::string transform = j.value("transform", std::string("softmax"));
        const std::string input     = j.value("gate_input", std::string("embedding"));
        if (transform != "softmax" && transform != "escort") {
            fail(source, "output.transform '" + transform + "' is not softmax or escort");
        }
        if (input != "embedding" && input != "base") {
            fail(source, "output.gate_input '" + input + "' is not embedding or base");
        }
        s.transform   = transform == "escort" ? GateTransform::escort : GateTransform::softmax;
        s.input       = input == "base" ? GateInput::base : GateInput::embedding;
        s.temperature = j.at("temperature").get<double>();
        s.eval_temperature        = j.value("eval_temperature", 0.0);
        s.temperature_decay       = j.value("temperature_decay", 0.0);
        s.temperature_decay_start = j.value("temperature_decay_start", int64_t{ 0 });
        s.dual_temperature        = j.value("dual_temperature", false);
        s.regularisers = { j.value("importance", 0.0), j.value("sample_sim_same", 0.0), j.value("sample_sim_diff", 0.0),
                           j.value("ideal_gate", 0.0), j.value("entropy", 0.0) };
    } catch (const nlohmann::json::exception & e) {
        fail(source, std::string("'output' settings: ") + json_error_text(e));
    }
    if (!(s.temperature > 0) || !(s.eval_temperature >= 0)) {
        fail(source, "output.temperature must be positive and output.eval_temperature positive or 0");
    }
    if (s.top_k < 1) {
        fail(source, "output.top_k must be at least 1");
    }
    return s;
}

OutputMixture::OutputMixture(LoraMixture & experts, int64_t feature_size, int64_t hidden, OutputMixSettings settings,
                             uint64_t seed, c10::Device device)
    : experts_(experts), routing_(std::make_shared<RowRouting>()), settings_(settings),
      temperature_(settings.eval_temperature > 0 ? settings.eval_temperature : settings.temperature) {
    const int64_t n = experts_.num_experts();
    if (settings_.top_k > n) {
        fail("--top-k", std::to_string(settings_.top_k) + " is more than the " + std::to_string(n) + " experts");
    }
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    gate_             = CgmGate::fresh(feature_size, hidden, n, gen, device);
    experts_.attach_rows(routing_);
}

NamedTensors OutputMixture::parameters() const {
    return { { "output_gate.lin1.weight", gate_.lin1_weight },
             { "output_gate.lin1.bias", gate_.lin1_bias },
             { "output_gate.output.weight", gate_.output_weight },
             { "output_gate.output.bias", gate_.output_bias } };
}

void OutputMixture::set_epoch(int64_t epoch) {
    temperature_ = decayed_temperature(settings_.temperature, settings_.temperature_decay, settings_.temperature_decay_start, epoch);
}

double OutputMixture::gate_flops() const {
    return 2.0 * static_cast<double>(gate_.lin1_weight.numel() + gate_.output_weight.numel());
}

at::Tensor OutputMixture::gate_features(const OutputMixInput & in) {
    if (settings_.input == GateInput::embedding) {
        return in.input_features();
    }
    routing_->weights = at::zeros({ in.batch, 1, num_experts() }, gate_.lin1_weight.options().requires_grad(false));
    c10::NoGradGuard no_grad;  // the base is frozen: nothing to learn through this pass
    return in.base_features();
}

void OutputMixture::route_experts_major(int64_t batch) {
    const auto       options = gate_.lin1_weight.options().requires_grad(false);
    const at::Tensor expert  = at::arange(num_experts(), options.dtype(at::kLong)).repeat_interleave(batch);  // [E B]
    routing_->weights        = at::one_hot(expert, num_experts()).to(options.dtype()).unsqueeze(1);          // [E B, 1, E]
}

void OutputMixture::route_one_each(const at::Tensor & expert) {
    routing_->weights = at::one_hot(expert, num_experts()).to(gate_.lin1_weight.scalar_type()).unsqueeze(1);  // [B, 1, E]
}

at::Tensor OutputMixture::combined(const at::Tensor & z, const at::Tensor & p) const {
    switch (settings_.combiner) {
        case Combiner::pre_softmax: return pre_softmax_logits(z, p);
        case Combiner::top_k:
            return settings_.top_k == 1 ? top_1_scaled_probs(z, p) : expectation_log_probs(z, top_k_renormalised(p, settings_.top_k));
        default: return expectation_log_probs(z, p);
    }
}

OutputRoute OutputMixture::route(const OutputMixInput & in) {
    const at::Tensor s   = gate_.logits(gate_features(in));                            // [B, E]
    const at::Tensor p   = gate_probabilities(s, temperature_, settings_.transform);  // [B, E]
    GateLog &        log = experts_.log();
    if (log.enabled) {
        log.batches["output"].push_back(p.detach().to(at::kCPU));
    }
    const int64_t b       = in.batch;
    const auto    long_on = p.options().dtype(at::kLong);
    if (routes_one_expert(settings_)) {
        route_one_each(chosen_expert_of(settings_.combiner, s, p));
        return { at::arange(b, long_on), [](const at::Tensor & z) { return z; } };
    }
    route_experts_major(b);
    const at::Tensor p_used = p.detach();
    return { at::arange(b, long_on).repeat({ num_experts() }), [this, b, p_used](const at::Tensor & z) {
                std::vector<int64_t> shape{ -1, b };
                shape.insert(shape.end(), z.sizes().begin() + 1, z.sizes().end());
                // The seed's top-1 scaling serves training only; evaluation of k = 1 runs one expert.
                return combined(z.reshape(shape), p_used);
            } };
}

MixedOutput OutputMixture::train_forward(const OutputMixInput & in, const at::Tensor & features, const at::Tensor & gate_logits) {
    const at::Tensor p = gate_probabilities(gate_logits, temperature_, settings_.transform);  // [B, E]
    route_experts_major(in.batch);
    const int64_t        b = in.batch;
    const at::Tensor     rows = at::arange(b, p.options().dtype(at::kLong)).repeat({ num_experts() });
    const at::Tensor     flat = in.logits(rows);  // [E B, ..., C]
    std::vector<int64_t> shape{ num_experts(), b };
    shape.insert(shape.end(), flat.sizes().begin() + 1, flat.sizes().end());
    const at::Tensor z = flat.reshape(shape);  // [E, B, ..., C]
    const bool       need_nll = settings_.combiner == Combiner::stochastic || settings_.combiner == Combiner::loss_gate ||
                          settings_.regularisers.ideal_gate != 0;
    const at::Tensor nll = need_nll ? expert_nll(z, in.labels) : at::Tensor();  // [E, B]
    MixedOutput      out;
    switch (settings_.combiner) {
        case Combiner::stochastic: {
            const at::Tensor drawn = at::multinomial(p.detach().to(at::kFloat), 1).squeeze(-1);  // [B]
            out.logits = select_expert(z, drawn);
            out.loss   = jacobs_loss(p, nll);
            break;
        }
        case Combiner::loss_gate:
            out.logits = select_expert(z, chosen_expert_of(settings_.combiner, gate_logits, p));
            out.loss   = mixture_nll(out.logits, in.labels) + loss_gate_regression(gate_logits / temperature_, nll);
            break;
        default:
            if (settings_.dual_temperature) {
                // Experts learn from the mixture at T (gate detached); the gate from it at T = 1.
                const at::Tensor p1 = gate_probabilities(gate_logits, 1.0, settings_.transform);
                out.logits               = combined(z, p.detach());
                const at::Tensor gate_nll = mixture_nll(combined(z.detach(), p1), in.labels);
                // Both gradients; the value reported is the mixture's loss at T alone.
                out.loss = mixture_nll(out.logits, in.labels) + (gate_nll - gate_nll.detach());
            } else {
                out.logits = combined(z, p);
                out.loss   = mixture_nll(out.logits, in.labels);
            }
    }
    if (settings_.regularisers.any()) {
        out.loss = out.loss + gate_penalty(settings_.regularisers, p, features, nll);
    }
    return out;
}

MixedOutput OutputMixture::forward(const OutputMixInput & in) {
    if (in.training) {
        if (!in.labels.defined()) {
            throw Error("output mixture: training needs labels");
        }
        const at::Tensor features = gate_features(in);
        return train_forward(in, features, gate_.logits(features));
    }
    const OutputRoute r = route(in);
    MixedOutput       out;
    out.logits = r.mix(in.logits(r.rows));
    if (in.labels.defined()) {
        out.loss = mixture_nll(out.logits, in.labels);
    }
    return out;
}

}  // namespace cgm
