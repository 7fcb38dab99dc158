#include "cli/gate_flags.h"

#include "core/error.h"

namespace cgm {

namespace {

bool given(const CLI::App & app, const char * name) {
    const CLI::Option * option = app.get_option_no_throw(name);
    return option != nullptr && option->count() > 0;
}

}  // namespace

void add_gate_training_flags(CLI::App & app, GateTrainingFlags & f) {
    app.add_option("--combiner", f.combiner, "--mix output: how the experts' outputs combine")
        ->capture_default_str()
        ->check(CLI::IsMember({ "expectation", "pre-softmax", "top-k", "stochastic", "loss-gate" }));
    app.add_option("--gate-input", f.gate_input, "--mix output: what the gate sees: the mean input embedding, or the base's pooled features (one more pass)")
        ->capture_default_str()
        ->check(CLI::IsMember({ "embedding", "base" }));
    app.add_flag("--escort", f.escort, "--mix output: the escort transform x^2 / sum x^2 instead of the gate's softmax");
    app.add_option("--temperature-decay", f.output.temperature_decay, "--mix output: per-epoch decay of --temperature (the seed's schedule)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--temperature-decay-start", f.output.temperature_decay_start,
                   "--mix output: S in the seed's T <- max(0.001, T / (1 + D (e - S))) after each epoch e > S (epochs from 0)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--dual-temperature", f.output.dual_temperature,
                 "--mix output with --train-experts: experts learn at --temperature, the gate at temperature 1");
    GateRegularisers & r = f.output.regularisers;
    app.add_option("--importance", r.importance, "Penalty weight on the CV^2 of the batch's summed gate weights (every cgm gate)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--entropy", r.entropy, "Penalty weight on the gate weights' mean entropy (every cgm gate; negative: evener weights)")
        ->capture_default_str();
    app.add_option("--sample-sim-same", r.sample_sim_same, "--mix output: weight pulling examples close in feature space onto one expert")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--sample-sim-diff", r.sample_sim_diff, "--mix output: weight pushing distant examples onto different experts")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--ideal-gate", r.ideal_gate, "--mix output: weight of MSE(gate, one-hot of the lowest-loss expert)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
}

GateRegularisers apply_gate_training_flags(const CLI::App & app, const GateTrainingFlags & f, GateConfig & config) {
    const bool output = config.mix == MixMode::output;
    if (!output) {
        for (const char * name : { "--combiner", "--gate-input", "--escort", "--temperature-decay", "--temperature-decay-start",
                                   "--dual-temperature", "--sample-sim-same", "--sample-sim-diff", "--ideal-gate" }) {
            if (given(app, name)) {
                fail(name, "applies to output-level mixtures only (--mix output)");
            }
        }
        if (config.gate == GateKind::xlora && (given(app, "--importance") || given(app, "--entropy"))) {
            fail(given(app, "--importance") ? "--importance" : "--entropy", "applies to cgm gates (--gate cgm), not X-LoRA's scalings");
        }
        return f.output.regularisers;
    }
    if (config.gate == GateKind::xlora) {
        fail("--mix output", "mixes whole experts' outputs with its own gate; it does not take --gate xlora");
    }
    if (!config.targets.empty()) {
        fail("--gate-targets", "names modules for layer-level gates; --mix output has one gate on the input");
    }
    OutputMixSettings s = f.output;
    s.combiner          = parse_combiner(f.combiner);
    s.transform         = f.escort ? GateTransform::escort : GateTransform::softmax;
    s.input             = f.gate_input == "base" ? GateInput::base : GateInput::embedding;
    s.temperature       = config.xlora.temperature;
    if (given(app, "--top-k")) {
        if (s.combiner != Combiner::top_k) {
            fail("--top-k", "with --mix output applies to --combiner top-k only");
        }
        s.top_k = config.xlora.top_k;
    }
    const auto experts = static_cast<int64_t>(config.experts.size());
    if (s.top_k < 1 || s.top_k > experts) {
        fail("--top-k", std::to_string(s.top_k) + " must be between 1 and the " + std::to_string(experts) + " experts");
    }
    if (s.dual_temperature && !config.train_experts) {
        fail("--dual-temperature", "splits the experts' and the gate's gradients: it needs --train-experts");
    }
    if (s.dual_temperature && (s.combiner == Combiner::stochastic || s.combiner == Combiner::loss_gate)) {
        fail("--dual-temperature", "needs a combiner that mixes by the gate weights (expectation, pre-softmax, top-k)");
    }
    if (f.escort) {
        for (const char * name : { "--temperature", "--temperature-decay", "--dual-temperature" }) {
            if (given(app, name)) {
                fail(name, "has no effect with --escort: x^2 / sum x^2 of x = logits / T does not depend on T");
            }
        }
    }
    if (given(app, "--temperature-decay-start") && s.temperature_decay == 0) {
        fail("--temperature-decay-start", "without --temperature-decay has nothing to start");
    }
    config.output = s;
    return {};
}

}  // namespace cgm
