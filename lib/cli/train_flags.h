#pragma once
// Flags shared by the training and evaluation programs.
#include "eval/t5_predict.h"
#include "models/t5_base.h"
#include "models/t5.h"
#include "train/trainer.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace cgm {

struct TextFlags {
    std::string prompt          = "seed";
    std::string target          = "text";
    int64_t     max_source_len  = 512;
    int64_t     max_target_len  = 64;
    int64_t     eval_batch_size = 32;

    TextSetup setup() const;
};

struct DataFlags {
    std::vector<std::string> train;
    std::vector<std::string> val;
    int64_t                  per_file_limit = 0;
    std::string              val_scoring    = "generate";
};

struct ModelFlags {
    std::string  dtype = "f32";
    T5RunOptions run;
};

void add_train_flags(CLI::App & app, TrainOptions & options);
void add_text_flags(CLI::App & app, TextFlags & flags);
void add_data_flags(CLI::App & app, DataFlags & flags);
void add_model_flags(CLI::App & app, ModelFlags & flags);

}  // namespace cgm

namespace cgm {

// Everything a training program takes besides its own model flags (--base, --out, data, trainer,
// text and model flags).
struct TrainingFlags {
    std::string  base_dir;
    std::string  out_dir;
    DataFlags    data;
    TrainOptions train;
    TextFlags    text;
    ModelFlags   model;
};

void add_training_flags(CLI::App & app, TrainingFlags & flags, const std::string & out_help);

struct TrainingInputs {
    T5Base                 base;
    std::vector<McqRecord> train;
    std::vector<McqRecord> val;
};

// The base named by --base (with the model flags applied) and the --train/--val records.
TrainingInputs load_training_inputs(const TrainingFlags & flags, const std::string & device);

}  // namespace cgm
