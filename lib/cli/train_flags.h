#pragma once
// Flags shared by the training and evaluation programs.
#include "adapters/adapter_folder.h"
#include "eval/routing.h"
#include "eval/t5_predict.h"
#include "models/beit_base.h"
#include "models/model_family.h"
#include "models/t5_base.h"
#include "models/t5.h"
#include "train/trainer.h"
#include "vision/image_set.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct TextFlags {
    std::string prompt         = "seed";
    std::string target         = "text";
    int64_t     max_source_len = 512;
    int64_t     max_target_len = 64;
    std::string padding        = "longest";  // or "max-length" (the seed's)
    bool        loss_on_padding = false;

    TextSetup setup() const;
};

struct DataFlags {
    std::vector<std::string> train;
    std::vector<std::string> val;
    int64_t                  per_file_limit = 0;
    std::string              val_scoring    = "generate";
};

struct ModelFlags {
    std::string  dtype           = "f32";
    int64_t      eval_batch_size = 32;
    T5RunOptions run;  // T5 only
};

void add_train_flags(CLI::App & app, TrainOptions & options);
void add_text_flags(CLI::App & app, TextFlags & flags);
void add_data_flags(CLI::App & app, DataFlags & flags);
void add_model_flags(CLI::App & app, ModelFlags & flags);

// What a model's training fixed for its use (prompt, target, lengths, dtype), from the run.json of
// the first of `model_dirs` that has one: applied to the flags not given; a given flag that differs
// is kept, with a warning. The current run record is updated to match.
void apply_saved_settings(const std::vector<std::string> & model_dirs, CLI::App & app);

// A folder written from a model (save-base --merge) keeps the text settings it was trained with:
// its run.json gets the --prompt, --target and lengths of `model_dir`'s, for evaluate to take.
void carry_text_settings(const std::string & model_dir);

// The text flags a model folder runs with: each of --prompt, --target, --max-source-len and
// --max-target-len as given to `app`, else as its run.json records, else as in `flags`.
TextFlags saved_text_flags(const std::string & model_dir, const CLI::App & app, TextFlags flags);

// The static mixture of --expert NAME=DIR..., --experts-only and --fixed-weights w1,w2,...; a
// weight that is not a number is an Error naming the flag.
StaticMixture static_mixture_of(const std::vector<std::string> & expert_args, const std::string & experts_only,
                                const std::string & fixed_weights, bool merge);

// The flags only a text model (T5) takes (prompt, lengths, scoring, --ff-topk, ...): given with an
// image model they are an Error naming the flag, not silently ignored.
void reject_text_flags_for(ModelFamily family, const CLI::App & app);

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

// The base named by --base and its data: a T5 with --train/--val multiple-choice records, or a BEiT
// with --train/--val image splits (the modality is the base's).
struct TrainingInputs {
    ModelFamily            family = ModelFamily::t5;
    std::optional<T5Base>  t5;
    std::vector<McqRecord> train, val;
    std::optional<BeitBase> beit;
    ImageSet                train_images, val_images;

    AdaptableModel & model();
};

// Every data path is of the model's modality (image splits for BEiT, jsonl records for T5); an
// Error names the first that is not.
void require_data_of_family(const std::vector<std::string> & paths, ModelFamily family);

// The base (with the model flags applied) and the data, checked to be of the base's modality, as
// are the flags given to `app`.
TrainingInputs load_training_inputs(const TrainingFlags & flags, const CLI::App & app, const std::string & device);

// The task that trains `trainable` on the inputs and saves the result with `save`; with `gate`,
// every validation also reports the gate's analytics (metrics.csv's val_<name> columns); `hooks`
// add the gate's penalties and schedules to training.
std::unique_ptr<TrainTask> make_training_task(TrainingInputs & in, const TrainingFlags & flags, NamedTensors trainable,
                                              std::function<void(const std::string &)> save,
                                              std::optional<GateProbe> gate = std::nullopt, TrainingHooks hooks = {});

}  // namespace cgm
