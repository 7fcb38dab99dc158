// finetune: train every weight of a T5 base for multiple-choice QA; the best model (by
// validation accuracy) is written as a Hugging Face model folder with its tokenizer.
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/runtime.h"
#include "io/hf_checkpoint.h"
#include "io/json_file.h"
#include "models/t5_base.h"
#include "train/t5_mcq_task.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

int main(int argc, char ** argv) {
    CLI::App      app("Fine-tune every weight of a T5 base (Hugging Face layout out)", "finetune");
    CommonOptions common;
    std::string   base_dir, out_dir;
    TrainOptions  train_opts;
    TextFlags     text;
    DataFlags     data;
    ModelFlags    model_flags;
    train_opts.lr = 1e-4;  // the seed's full fine-tuning rate
    app.add_option("--base", base_dir, "Base checkpoint from save-base (with tokenizer)")->required();
    app.add_option("--out", out_dir, "Output folder: model, trainer_state.json, metrics.csv, curves.png")->required();
    add_data_flags(app, data);
    add_train_flags(app, train_opts);
    add_text_flags(app, text);
    add_model_flags(app, model_flags);
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        train_opts.seed = common.seed;
        const c10::ScalarType dtype = parse_float_dtype(model_flags.dtype);
        T5Base     base          = load_t5_base(base_dir, dtype, parse_device(common.device), model_flags.run);
        const auto train_records = read_mcq_files(data.train, data.per_file_limit);
        const auto val_records   = read_mcq_files(data.val);

        NamedTensors params = base.model.named_parameters();
        for (auto & [name, t] : params) {
            t.requires_grad_(true);
        }
        nlohmann::json config = read_json_file((fs::path(base_dir) / "config.json").string());
        config["torch_dtype"] = hf_dtype_name(dtype);
        const auto    side_files = hf_side_files(base_dir);
        T5McqTaskSpec spec{ text.setup(), parse_scoring(data.val_scoring), text.eval_batch_size, params,
                            [&](const std::string & dir) { write_hf_model_dir(dir, config, base.model.named_parameters(), side_files); } };
        T5McqTask     task(base.model, base.tokenizer, train_records, val_records, spec);
        const TrainResult r = train(task, train_opts, out_dir);
        std::printf("finetune: best val accuracy %.4f at step %lld of %lld%s -> %s\n", r.best_accuracy,
                    static_cast<long long>(r.best_step), static_cast<long long>(r.steps),
                    r.stopped_early ? " (stopped early)" : "", out_dir.c_str());
    });
}
