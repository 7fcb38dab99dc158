#include "cli/train_flags.h"

#include "cli/config_flags.h"
#include "core/error.h"
#include "core/numbers.h"
#include "cli/program.h"
#include "core/runtime.h"
#include "io/run_record.h"
#include "train/image_classify_task.h"
#include "train/t5_mcq_task.h"

#include <spdlog/spdlog.h>

namespace cgm {

TextSetup TextFlags::setup() const {
    return { parse_prompt_style(prompt), parse_target_style(target), max_source_len, max_target_len, padding == "max-length",
             loss_on_padding };
}

void add_train_flags(CLI::App & app, TrainOptions & o) {
    app.add_option("--lr", o.lr, "Learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--epochs", o.epochs, "Epochs (ignored when --steps is given)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--steps", o.steps, "Optimizer steps (0: use --epochs)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--batch-size", o.batch_size, "Examples per micro-batch")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-grad-norm", o.max_grad_norm, "Clip the global gradient norm (0: off)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--schedule", o.schedule, "Learning-rate schedule")->capture_default_str()->check(CLI::IsMember({ "constant", "linear", "cosine" }));
    app.add_option("--warmup", o.warmup, "Linear warm-up steps")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option_function<std::string>("--best-metric", [&o](const std::string & v) { o.best_metric = v == "loss" ? BestMetric::loss : BestMetric::accuracy; },
                                          "Keep the model with the best val accuracy (highest) or val loss (lowest)")
        ->default_str("accuracy")->check(CLI::IsMember({ "accuracy", "loss" }));
    app.add_option("--patience", o.patience, "Stop after this many evaluations without a better --best-metric (0: never)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--eval-every", o.eval_every, "Steps between evaluations (0: every epoch)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--save-every", o.save_every, "Steps between checkpoints besides those at evaluations (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--save-total-limit", o.save_total_limit, "Checkpoints kept in checkpoint/ (the newest)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--log-every", o.log_every, "Steps between log lines (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--resume", o.resume, "Continue the run in --out from its last checkpoint");
}

void add_text_flags(CLI::App & app, TextFlags & f) {
    app.add_option("--prompt", f.prompt, "Prompt style: seed or unifiedqa")->capture_default_str()->check(CLI::IsMember({ "seed", "unifiedqa" }));
    app.add_option("--target", f.target, "Target: the answer text or its letter")->capture_default_str()->check(CLI::IsMember({ "text", "letter" }));
    app.add_option("--max-source-len", f.max_source_len, "Prompt tokens kept (EOS last)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-target-len", f.max_target_len, "Answer tokens kept; also the generation limit")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--padding", f.padding, "Seed fidelity: max-length pads every prompt and answer to the maximum lengths (the seed's padding=\"max_length\"); default: to the longest in the batch")
        ->capture_default_str()->check(CLI::IsMember({ "longest", "max-length" }));
    app.add_flag("--loss-on-padding", f.loss_on_padding, "Seed fidelity: count the padded answer positions in the loss (the seed's labels have no -100)");
}

void add_data_flags(CLI::App & app, DataFlags & f) {
    app.add_option("--train", f.train, "Training split(s) from prepare-data: jsonl for T5, DIR/train.safetensors for BEiT (several: one combined set)")->type_name(kPathType)->required();
    app.add_option("--val", f.val, "Validation split(s): jsonl, or DIR/val.safetensors")->type_name(kPathType)->required();
    app.add_option("--per-file-limit", f.per_file_limit, "Use the first N records of each --train file (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--val-scoring", f.val_scoring, "How validation accuracy is computed")->capture_default_str()->check(CLI::IsMember(scoring_names()));
}

void add_model_flags(CLI::App & app, ModelFlags & f) {
    app.add_option("--dtype", f.dtype, "Compute dtype of the frozen weights: f32 or bf16")->capture_default_str()->check(CLI::IsMember({ "f32", "bf16" }));
    app.add_option("--eval-batch-size", f.eval_batch_size, "Batch size for evaluation")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--ff-topk", f.run.ff_topk, "Keep the K largest feed-forward pre-activations per token (0: dense)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--q-chunk", f.run.q_chunk, "Attention/FF over chunks of N query positions: memory linear in the input length (0: off)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--attn-topk", f.run.attn_topk, "Encoder and cross-attention keep the K largest scores per query (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
}

StaticMixture static_mixture_of(const std::vector<std::string> & expert_args, const std::string & experts_only,
                                const std::string & fixed_weights, bool merge) {
    StaticMixture mix{ {}, experts_only, {}, merge };
    for (const auto & e : expert_args) {
        mix.experts.push_back(parse_expert_spec(e));
    }
    for (const auto & w : split_list(fixed_weights)) {
        const std::optional<double> value = parse_number(w);
        if (!value) {
            fail("--fixed-weights", "'" + w + "' is not a number");
        }
        mix.fixed_weights.push_back(*value);
    }
    return mix;
}

namespace {

// The text settings a model is trained with and runs with, saved in its run.json (apply_saved_settings
// also takes --dtype).
const std::vector<const char *> & text_setting_names() {
    static const std::vector<const char *> names = { "prompt", "target", "max-source-len", "max-target-len", "padding" };
    return names;
}

}  // namespace

void apply_saved_settings(const std::vector<std::string> & model_dirs, CLI::App & app) {
    std::optional<RunRecord> saved;
    std::string              dir;
    for (const auto & d : model_dirs) {
        if ((saved = read_run_record(d))) {
            dir = d;
            break;
        }
    }
    if (!saved) {
        return;
    }
    RunRecord run = current_run() ? *current_run() : RunRecord{};
    std::vector<const char *> names = text_setting_names();
    names.push_back("dtype");
    for (const char * name : names) {
        CLI::Option * option = app.get_option_no_throw(std::string("--") + name);
        const auto    value  = saved->settings.find(name);
        if (option == nullptr || value == saved->settings.end() || !value->is_string()) {
            continue;
        }
        const std::string then = value->get<std::string>();
        const std::string now  = option->count() > 0 ? option->results().back() : option->get_default_str();
        if (then == now) {
            continue;
        }
        if (option->count() > 0) {
            spdlog::warn("--{} {} differs from --{} {}, which the model was trained with ({}/run.json)", name, now, name, then, dir);
            continue;
        }
        option->clear();
        option->add_result(then);
        option->run_callback();
        run.settings[name] = then;
        spdlog::info("--{} {}: as the model was trained ({}/run.json)", name, then, dir);
    }
    if (current_run()) {
        set_current_run(run);
    }
}

void carry_text_settings(const std::string & model_dir) {
    const std::optional<RunRecord> saved = read_run_record(model_dir);
    if (!saved || !current_run()) {
        return;
    }
    RunRecord run = *current_run();
    for (const char * name : text_setting_names()) {
        if (const auto value = saved->settings.find(name); value != saved->settings.end()) {
            run.settings[name] = *value;
        }
    }
    set_current_run(run);
}

TextFlags saved_text_flags(const std::string & model_dir, const CLI::App & app, TextFlags flags) {
    const std::optional<RunRecord> saved = read_run_record(model_dir);
    if (!saved) {
        return flags;
    }
    const auto saved_value = [&](const char * name) -> std::optional<std::string> {
        const CLI::Option * given = app.get_option_no_throw(std::string("--") + name);
        const auto          value = saved->settings.find(name);
        if ((given != nullptr && given->count() > 0) || value == saved->settings.end() || !value->is_string()) {
            return std::nullopt;
        }
        return value->get<std::string>();
    };
    const auto saved_length = [&](const char * name, int64_t & length) {
        if (const auto v = saved_value(name)) {
            const std::optional<double> n = parse_number(*v);
            if (!n || *n < 1 || *n != static_cast<double>(static_cast<int64_t>(*n))) {
                fail(model_dir + "/run.json", std::string("settings.") + name + " is not a positive whole number: '" + *v + "'");
            }
            length = static_cast<int64_t>(*n);
        }
    };
    flags.prompt = saved_value("prompt").value_or(flags.prompt);
    flags.target = saved_value("target").value_or(flags.target);
    flags.padding = saved_value("padding").value_or(flags.padding);
    saved_length("max-source-len", flags.max_source_len);
    saved_length("max-target-len", flags.max_target_len);
    return flags;
}

void reject_text_flags_for(ModelFamily family, const CLI::App & app) {
    if (family == ModelFamily::t5) {
        return;
    }
    for (const char * name : { "--prompt", "--target", "--max-source-len", "--max-target-len", "--padding", "--loss-on-padding", "--ff-topk", "--q-chunk", "--attn-topk",
                               "--scoring", "--val-scoring", "--per-file-limit" }) {
        const CLI::Option * option = app.get_option_no_throw(name);
        if (option != nullptr && option->count() > 0) {
            fail(name, "applies to text models (T5) only; this base is an image model (BEiT)");
        }
    }
}

}  // namespace cgm

namespace cgm {

void add_training_flags(CLI::App & app, TrainingFlags & f, const std::string & out_help) {
    app.add_option("--base", f.base_dir, "Base checkpoint from save-base (T5 with tokenizer, or BEiT)")->type_name(kPathType)->required();
    app.add_option("--out", f.out_dir, out_help)->type_name(kPathType)->required();
    add_data_flags(app, f.data);
    add_train_flags(app, f.train);
    add_text_flags(app, f.text);
    add_model_flags(app, f.model);
}

AdaptableModel & TrainingInputs::model() {
    return t5 ? static_cast<AdaptableModel &>(t5->model) : beit->model;
}

void require_data_of_family(const std::vector<std::string> & paths, ModelFamily family) {
    const bool images = family == ModelFamily::beit;
    for (const auto & path : paths) {
        if (is_image_split_path(path) != images) {
            fail(path, images ? "the model is an image model (BEiT): give image splits from prepare-data "
                                "(<dir>/<split>.safetensors)"
                              : "the model is a text model (T5): give multiple-choice jsonl files from prepare-data");
        }
    }
}

TrainingInputs load_training_inputs(const TrainingFlags & f, const CLI::App & app, const std::string & device) {
    TrainingInputs in;
    in.family         = model_family_of(f.base_dir);
    reject_text_flags_for(in.family, app);
    const bool images = in.family == ModelFamily::beit;
    require_data_of_family(f.data.train, in.family);
    require_data_of_family(f.data.val, in.family);
    const c10::ScalarType dtype = parse_float_dtype(f.model.dtype);
    if (images) {
        in.beit.emplace(load_beit_base(f.base_dir, dtype, parse_device(device)));
        in.train_images = read_image_sets(f.data.train);
        in.val_images   = read_image_sets(f.data.val);
    } else {
        in.t5.emplace(load_t5_base(f.base_dir, dtype, parse_device(device), f.model.run));
        in.train = read_mcq_files(f.data.train, f.data.per_file_limit);
        in.val   = read_mcq_files(f.data.val);
    }
    return in;
}

std::unique_ptr<TrainTask> make_training_task(TrainingInputs & in, const TrainingFlags & f, NamedTensors trainable,
                                              std::function<void(const std::string &)> save, std::optional<GateProbe> gate,
                                              TrainingHooks hooks) {
    if (in.beit) {
        return std::make_unique<ImageClassifyTask>(
            *in.beit, std::move(in.train_images), std::move(in.val_images),
            ImageClassifyTaskSpec{ f.model.eval_batch_size, std::move(trainable), std::move(save), std::move(gate), std::move(hooks) });
    }
    if (parse_scoring(f.data.val_scoring) == Scoring::teacher_forced) {
        spdlog::warn("--val-scoring teacher-forced: an untrained model with tied embeddings scores well by copying its "
                     "decoder input, so the best model may be the untrained one (rank is safer; see README)");
    }
    T5McqTaskSpec spec{ f.text.setup(), parse_scoring(f.data.val_scoring), f.model.eval_batch_size, std::move(trainable),
                        std::move(save), std::move(gate), std::move(hooks) };
    return std::make_unique<T5McqTask>(in.t5->model, in.t5->tokenizer, in.train, in.val, spec);
}

}  // namespace cgm
