// cgm-train: train context gates that mix several frozen LoRA experts on one T5 base, so one
// model serves every domain; writes gate_config.json + gate.safetensors (gate weights only).
#include "adapters/gate_config.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/runtime.h"
#include "train/t5_mcq_task.h"

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
    add_training_flags(app, f, "Output folder: gate_config.json, gate.safetensors, trainer_state.json, metrics.csv, curves.png");
    app.add_option("--expert", expert_args, "An expert: NAME=DIR of a PEFT LoRA adapter (repeat; any number)")->required();
    app.add_option("--gate", gate, "Gate kind")->capture_default_str()->check(CLI::IsMember({ "cgm" }));
    app.add_option("--mix", mix, "example: per-example weights (batch-independent); seed: the seed code (batch-mean, A and B mixed separately)")
        ->capture_default_str()
        ->check(CLI::IsMember({ "example", "seed" }));
    app.add_option("--gate-hidden", hidden, "Hidden size H of each gate Linear(d,H)-ReLU-Linear(H,E)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--gate-targets", targets, "Module names that get a gate (default: every module with experts)");
    app.add_option("--batching", batching, "round-robin: each step one domain's batch, domains in turn (the seed); mixed: shuffled")
        ->capture_default_str()
        ->check(CLI::IsMember({ "round-robin", "mixed" }));
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        f.train.seed      = common.seed;
        TrainingInputs in = load_training_inputs(f, common.device);
        GateConfig     config;
        config.base   = absolute(f.base_dir);
        config.mix    = parse_mix_mode(mix);
        config.hidden = hidden;
        config.targets = split_list(targets);
        for (const auto & e : expert_args) {
            ExpertSpec spec = parse_expert_spec(e);
            spec.dir        = absolute(spec.dir);
            config.experts.push_back(spec);
        }
        LoraMixture mixture(in.base.model.linear_modules(), config.experts, parse_float_dtype(f.model.dtype));
        mixture.attach_cgm(config.mix, config.hidden, config.targets, common.seed);
        int64_t trainable = 0;
        for (const auto & kv : mixture.gate_parameters()) {
            trainable += kv.second.numel();
        }
        spdlog::info("CGM ({} mix) over {} experts: {} gated modules, {} trainable parameters", mix, mixture.num_experts(),
                     mixture.gated_modules().size(), trainable);

        T5McqTaskSpec spec{ f.text.setup(), parse_scoring(f.data.val_scoring), f.text.eval_batch_size,
                            mixture.gate_parameters(),
                            [&](const std::string & dir) { save_gate_dir(dir, config, mixture); },
                            batching == "round-robin" };
        T5McqTask         task(in.base.model, in.base.tokenizer, in.train, in.val, spec);
        const TrainResult r = train(task, f.train, f.out_dir);
        std::printf("cgm-train: best val accuracy %.4f at step %lld of %lld%s -> %s\n", r.best_accuracy,
                    static_cast<long long>(r.best_step), static_cast<long long>(r.steps),
                    r.stopped_early ? " (stopped early)" : "", f.out_dir.c_str());
    });
}
