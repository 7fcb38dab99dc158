#include "cli/train_flags.h"

#include "core/runtime.h"

namespace cgm {

TextSetup TextFlags::setup() const {
    return { parse_prompt_style(prompt), parse_target_style(target), max_source_len, max_target_len };
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
    app.add_option("--patience", o.patience, "Stop after this many evaluations without a better val accuracy (0: never)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--eval-every", o.eval_every, "Steps between evaluations (0: every epoch)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--log-every", o.log_every, "Steps between log lines (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--resume", o.resume, "Continue the run in --out from its last checkpoint");
}

void add_text_flags(CLI::App & app, TextFlags & f) {
    app.add_option("--prompt", f.prompt, "Prompt style: seed or unifiedqa")->capture_default_str()->check(CLI::IsMember({ "seed", "unifiedqa" }));
    app.add_option("--target", f.target, "Target: the answer text or its letter")->capture_default_str()->check(CLI::IsMember({ "text", "letter" }));
    app.add_option("--max-source-len", f.max_source_len, "Prompt tokens kept (EOS last)")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--max-target-len", f.max_target_len, "Answer tokens kept; also the generation limit")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--eval-batch-size", f.eval_batch_size, "Batch size for evaluation")->capture_default_str()->check(CLI::PositiveNumber);
}

void add_data_flags(CLI::App & app, DataFlags & f) {
    app.add_option("--train", f.train, "Training jsonl file(s) from prepare-data (several: one combined set)")->required();
    app.add_option("--val", f.val, "Validation jsonl file(s)")->required();
    app.add_option("--per-file-limit", f.per_file_limit, "Use the first N records of each --train file (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--val-scoring", f.val_scoring, "How validation accuracy is computed")->capture_default_str()->check(CLI::IsMember({ "generate", "rank", "teacher-forced" }));
}

void add_model_flags(CLI::App & app, ModelFlags & f) {
    app.add_option("--dtype", f.dtype, "Compute dtype of the frozen weights: f32 or bf16")->capture_default_str()->check(CLI::IsMember({ "f32", "bf16" }));
    app.add_option("--ff-topk", f.run.ff_topk, "Keep the K largest feed-forward pre-activations per token (0: dense)")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--q-chunk", f.run.q_chunk, "Attention/FF over chunks of N positions to bound memory (0: off)")->capture_default_str()->check(CLI::NonNegativeNumber);
}

}  // namespace cgm

namespace cgm {

void add_training_flags(CLI::App & app, TrainingFlags & f, const std::string & out_help) {
    app.add_option("--base", f.base_dir, "Base checkpoint from save-base (with tokenizer)")->required();
    app.add_option("--out", f.out_dir, out_help)->required();
    add_data_flags(app, f.data);
    add_train_flags(app, f.train);
    add_text_flags(app, f.text);
    add_model_flags(app, f.model);
}

TrainingInputs load_training_inputs(const TrainingFlags & f, const std::string & device) {
    T5Base base = load_t5_base(f.base_dir, parse_float_dtype(f.model.dtype), parse_device(device), f.model.run);
    return { std::move(base), read_mcq_files(f.data.train, f.data.per_file_limit), read_mcq_files(f.data.val) };
}

}  // namespace cgm
