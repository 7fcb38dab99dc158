// finetune: train every weight of a T5 base for multiple-choice QA, or of a BEiT base for image
// classification; the best model (by validation accuracy) is written as a Hugging Face model folder
// with its tokenizer or image-preprocessor files.
#include "cli/program.h"
#include "cli/train_flags.h"
#include "core/runtime.h"
#include "dist/world.h"
#include "io/hf_checkpoint.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

int main(int argc, char ** argv) {
    CLI::App      app("Fine-tune every weight of a T5 or BEiT base (Hugging Face layout out)", "finetune");
    CommonOptions common;
    TrainingFlags f;
    f.train.lr = 1e-4;  // the seed's full fine-tuning rate
    add_training_flags(app, f, "Output folder: model, trainer_state.json, metrics.csv, curves.png");
    add_common_options(app, common);
    add_process_options(app, common);
    return run_program(app, common, argc, argv, [&] {
        f.train.seed      = common.seed;
        TrainingInputs in = load_training_inputs(f, app, common.device);
        NamedTensors   params = in.model().named_parameters();
        for (auto & [name, t] : params) {
            t.requires_grad_(true);
        }
        nlohmann::json config = read_json_file((fs::path(f.base_dir) / "config.json").string());
        config["torch_dtype"] = hf_dtype_name(parse_float_dtype(f.model.dtype));
        const auto side_files = hf_side_files(f.base_dir);
        const auto task       = make_training_task(in, f, params, [&](const std::string & dir) {
            write_hf_model_dir(dir, config, in.model().named_parameters(), side_files);
        });
        const TrainResult r = train(*task, f.train, f.out_dir);
        if (dist::is_main()) {
            std::printf("finetune: %s -> %s\n", describe(r).c_str(), f.out_dir.c_str());
        }
    });
}
