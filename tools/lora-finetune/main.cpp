// lora-finetune: train one LoRA adapter on a T5 base for multiple-choice QA, or on a BEiT base for
// image classification (with its classifier head trained in full, PEFT's modules_to_save); the best
// adapter (by validation accuracy) is written in PEFT's layout.
#include "adapters/lora.h"
#include "adapters/parameter_count.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/runtime.h"
#include "dist/world.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

int main(int argc, char ** argv) {
    CLI::App      app("Train a LoRA adapter on a T5 or BEiT base (PEFT layout out)", "lora-finetune");
    CommonOptions common;
    TrainingFlags f;
    LoraConfig    lora;
    std::string   targets, saved, rank_pattern, alpha_pattern;
    add_training_flags(app, f, "Output folder: adapter, trainer_state.json, metrics.csv, curves.png");
    app.add_option("--targets", targets, "Module names to adapt (T5: q,k,v,o,wi,wi_0,wi_1,wo; default q,v. BEiT: query,key,value,dense; default query,value)");
    CLI::Option * saved_flag = app.add_option("--modules-to-save", saved, "Modules trained in full and saved with the adapter (default: classifier for BEiT, none for T5; '' for none)");
    app.add_option("--rank", lora.r, "LoRA rank r")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--alpha", lora.alpha, "LoRA alpha (scaling alpha/r)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--dropout", lora.dropout, "Dropout on the LoRA input")->capture_default_str()->check(CLI::Range(0.0, 0.99));
    app.add_flag("--use-rslora", lora.use_rslora, "rsLoRA: scale by alpha/sqrt(r) instead of alpha/r");
    app.add_option("--rank-pattern", rank_pattern, "Per-module ranks NAME=R,... (PEFT's rank_pattern: NAME a regex matching "
                                                   "the end of a module path, e.g. v=4 or decoder.*\\.q=2)");
    app.add_option("--alpha-pattern", alpha_pattern, "Per-module alphas NAME=A,... (PEFT's alpha_pattern, matched as --rank-pattern)");
    // Malformed patterns are bad flags (exit 2), refused while the flags are read.
    app.final_callback([&] {
        try {
            lora.rank_pattern  = parse_rank_pattern(rank_pattern);
            lora.alpha_pattern = parse_alpha_pattern(alpha_pattern);
        } catch (const Error & e) {
            throw CLI::ValidationError(e.what());
        }
    });
    add_common_options(app, common);
    add_process_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        f.train.seed      = common.seed;
        TrainingInputs in = load_training_inputs(f, app, common.device);
        const bool beit   = in.family == ModelFamily::beit;
        lora.targets      = split_list(targets.empty() ? (beit ? "query,value" : "q,v") : targets);
        lora.modules_to_save = split_list(saved_flag->count() > 0 ? saved : (beit ? "classifier" : ""));
        if (beit) {
            lora.task_type.clear();  // PEFT writes null for image classifiers
        }
        lora.base_model   = fs::absolute(f.base_dir).lexically_normal().string();
        const auto  modules = in.model().linear_modules();
        LoraAdapter adapter = create_lora(modules, lora, common.seed);
        attach_lora(modules, adapter);
        Adapters attached;
        attached.lora                  = adapter;
        const ParameterCount count     = count_parameters(in.model(), attached);
        const int64_t        trainable = count.trainable, total = count.total;
        spdlog::info("LoRA r={} alpha={} on {} modules: {} trainable parameters ({:.2f}% of {})", lora.r, lora.alpha,
                     adapter.layers.size(), trainable, 100.0 * static_cast<double>(trainable) / static_cast<double>(total), total);

        const auto task = make_training_task(in, f, adapter.peft_tensors(), [&](const std::string & dir) { save_lora(adapter, dir); });
        const TrainResult r = train(*task, f.train, f.out_dir);
        if (dist::is_main()) {
            std::printf("lora-finetune: %s -> %s\n", describe(r).c_str(), f.out_dir.c_str());
        }
    });
}
