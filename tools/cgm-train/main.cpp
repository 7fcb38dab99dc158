// cgm-train: train gates that mix several frozen LoRA experts on one base (T5 or BEiT), so one
// model serves every domain: context gates inside every module (CGM), X-LoRA's scalings, or a gate
// over whole experts' outputs (--mix output); writes gate_config.json + gate.safetensors.
#include "adapters/adapter_folder.h"
#include "adapters/parameter_count.h"
#include "cli/gate_flags.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/runtime.h"
#include "dist/world.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

std::string absolute(const std::string & path) {
    return fs::absolute(path).lexically_normal().string();
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App                 app("Train a context-gated mixture of frozen LoRA experts on a T5 base", "cgm-train");
    CommonOptions            common;
    TrainingFlags            f;
    std::vector<std::string> expert_args;
    std::string              mix = "example", gate = "cgm", targets, batching = "round-robin";
    int64_t                  hidden = 4;
    bool                     train_experts = false;
    add_training_flags(app, f, "Output folder: gate_config.json, gate.safetensors, trainer_state.json, metrics.csv, curves.png");
    app.add_option("--expert", expert_args, "An expert: NAME=DIR of a PEFT LoRA adapter (repeat; any number)")->type_name(kNamedPathType)->required();
    app.add_option("--gate", gate, "cgm: a gate per module on its own input; xlora: peft's X-LoRA scalings")
        ->capture_default_str()
        ->check(CLI::IsMember({ "cgm", "xlora" }));
    app.add_option("--mix", mix, "example: per-example weights in every module (batch-independent); seed: the seed code (batch-mean, "
                                 "A and B mixed separately); output: one gate mixes the outputs of whole experts")
        ->capture_default_str()
        ->check(CLI::IsMember({ "example", "seed", "output" }));
    app.add_option("--gate-hidden", hidden, "Hidden size H of each gate Linear(d,H)-ReLU-Linear(H,E)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--gate-targets", targets, "Module names that get a gate (default: every module with experts)");
    app.add_option("--batching", batching, "round-robin: each step one domain's batch, domains in turn (the seed); mixed: shuffled")
        ->capture_default_str()
        ->check(CLI::IsMember({ "round-robin", "mixed" }));
    XLoraConfig xlora;
    xlora.depth = 1;
    app.add_option("--xlora-depth", xlora.depth, "X-LoRA classifier depth")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--xlora-size", xlora.size, "X-LoRA classifier hidden size (depth > 1)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--xlora-dropout", xlora.dropout, "X-LoRA classifier dropout")->capture_default_str()->check(CLI::Range(0.0, 0.99));
    app.add_flag("--layerwise", xlora.layerwise, "X-LoRA: one set of scalings per module instead of one for all");
    app.add_option("--temperature", xlora.temperature, "Softmax temperature of X-LoRA's or the output gate's weights")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--top-k", xlora.top_k, "X-LoRA: keep the k largest scalings per token (0: all); --combiner top-k: experts mixed (1: one)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--softmax-topk", xlora.softmax_topk, "X-LoRA: softmax over the kept top-k scalings");
    app.add_option("--global-scaling-weight", xlora.global_scaling, "X-LoRA: multiplier on every expert's output")->capture_default_str();
    app.add_option("--scaling-pass-value", xlora.scaling_pass_value, "X-LoRA: expert weight in the scaling pass (0: the base model)")->capture_default_str();
    app.add_flag("--train-experts", train_experts, "Train the experts' LoRA weights with the gates (saved in gate.safetensors)");
    GateTrainingFlags gate_training;
    add_gate_training_flags(app, gate_training);
    add_common_options(app, common);
    add_process_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        f.train.seed = common.seed;
        std::vector<std::string> expert_dirs;
        for (const auto & e : expert_args) {
            expert_dirs.push_back(parse_expert_spec(e).dir);
        }
        apply_saved_settings(expert_dirs, app);
        GateConfig config;
        config.base          = absolute(f.base_dir);
        config.mix           = parse_mix_mode(mix);
        config.hidden        = hidden;
        config.targets       = split_list(targets);
        config.train_experts = train_experts;
        config.gate          = parse_gate_kind(gate);
        config.xlora         = xlora;
        for (const auto & e : expert_args) {
            ExpertSpec spec = parse_expert_spec(e);
            spec.dir        = absolute(spec.dir);
            config.experts.push_back(spec);
        }
        const GateRegularisers layer_penalties = apply_gate_training_flags(app, gate_training, config);  // before any loading
        TrainingInputs         in              = load_training_inputs(f, app, common.device);
        config.xlora.hidden_size               = in.model().hidden_size();
        Adapters           gate_adapters = attach_gate(in.model(), config, parse_float_dtype(f.model.dtype), common.seed);
        const NamedTensors trained       = gate_tensors(gate_adapters);
        const int64_t      trainable     = numel_of(trained);
        spdlog::info("{} gate ({} mix) over {} experts on {} modules: {} trainable parameters", gate, mix,
                     gate_adapters.mixture->num_experts(), gate_adapters.mixture->stacks().size(), trainable);

        f.train.batching = parse_batching(batching);
        TrainingHooks hooks;
        if (layer_penalties.any()) {
            gate_adapters.mixture->log().keep_live = true;
            hooks.penalty = [&] { return gate_adapters.mixture->take_penalty(layer_penalties); };
        }
        if (gate_adapters.output) {
            hooks.on_epoch = [&](int64_t epoch) { gate_adapters.output->set_epoch(epoch); };
        }
        const auto save = [&](const std::string & dir) {
            if (gate_adapters.output) {  // evaluation runs at the temperature the schedule has reached
                config.output.eval_temperature = gate_adapters.output->temperature();
            }
            save_gate_dir(dir, config, trained);
        };
        const GateProbe probe{ gate_adapters.gate_log(), gate_adapters.routed_modules(), gate_adapters.expert_names() };
        const auto      task = make_training_task(in, f, trained, save, probe, hooks);
        const TrainResult r = train(*task, f.train, f.out_dir);
        if (dist::is_main()) {
            std::printf("cgm-train: %s -> %s\n", describe(r).c_str(), f.out_dir.c_str());
        }
    });
}
