// lora-finetune: train one LoRA adapter on a T5 base for multiple-choice QA; the best adapter
// (by validation accuracy) is written in PEFT's layout.
#include "adapters/lora.h"
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/runtime.h"
#include "models/t5_base.h"
#include "train/t5_mcq_task.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

std::vector<std::string> split_commas(const std::string & s) {
    std::vector<std::string> out;
    std::stringstream        in(s);
    for (std::string item; std::getline(in, item, ',');) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Train a LoRA adapter on a T5 base (PEFT layout out)", "lora-finetune");
    CommonOptions common;
    std::string   base_dir, out_dir, targets = "q,v";
    LoraConfig    lora;
    TrainOptions  train_opts;
    TextFlags     text;
    DataFlags     data;
    ModelFlags    model_flags;
    app.add_option("--base", base_dir, "Base checkpoint from save-base (with tokenizer)")->required();
    app.add_option("--out", out_dir, "Output folder: adapter, trainer_state.json, metrics.csv, curves.png")->required();
    app.add_option("--targets", targets, "Module names to adapt (q,k,v,o,wi,wi_0,wi_1,wo)")->capture_default_str();
    app.add_option("--rank", lora.r, "LoRA rank r")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--alpha", lora.alpha, "LoRA alpha (scaling alpha/r)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--dropout", lora.dropout, "Dropout on the LoRA input")->capture_default_str()->check(CLI::Range(0.0, 0.99));
    add_data_flags(app, data);
    add_train_flags(app, train_opts);
    add_text_flags(app, text);
    add_model_flags(app, model_flags);
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        train_opts.seed = common.seed;
        T5Base base     = load_t5_base(base_dir, parse_float_dtype(model_flags.dtype), parse_device(common.device), model_flags.run);
        const auto train_records = read_mcq_files(data.train, data.per_file_limit);
        const auto val_records   = read_mcq_files(data.val);

        lora.targets    = split_commas(targets);
        lora.base_model = fs::absolute(base_dir).lexically_normal().string();
        const auto  modules = base.model.linear_modules();
        LoraAdapter adapter = create_lora(modules, lora, common.seed);
        attach_lora(modules, adapter);
        int64_t trainable = 0;
        for (const auto & p : adapter.parameters()) {
            trainable += p.numel();
        }
        spdlog::info("LoRA r={} alpha={} on {} modules: {} trainable parameters ({:.2f}% of {})", lora.r, lora.alpha,
                     adapter.layers.size(), trainable, 100.0 * static_cast<double>(trainable) / static_cast<double>(base.model.num_parameters()),
                     base.model.num_parameters());

        T5McqTaskSpec spec{ text.setup(), parse_scoring(data.val_scoring), text.eval_batch_size, adapter.peft_tensors(),
                            [&](const std::string & dir) { save_lora(adapter, dir); } };
        T5McqTask     task(base.model, base.tokenizer, train_records, val_records, spec);
        const TrainResult r = train(task, train_opts, out_dir);
        std::printf("lora-finetune: best val accuracy %.4f at step %lld of %lld%s -> %s\n", r.best_accuracy,
                    static_cast<long long>(r.best_step), static_cast<long long>(r.steps),
                    r.stopped_early ? " (stopped early)" : "", out_dir.c_str());
    });
}
