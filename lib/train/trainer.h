#pragma once
// The training loop shared by finetune, lora-finetune and cgm-train: AdamW, schedule with
// warm-up, gradient accumulation and clipping, periodic validation that keeps the best model (by
// accuracy or loss) and stops early, and checkpoints that make --resume exact.
//
// Output folder: the task's model files (best so far), trainer_state.json, metrics.csv,
// curves.png, checkpoint/state-<step>.safetensors (trainable weights + optimizer). SIGINT or
// SIGTERM end the step under way, write a checkpoint and throw an Error saying how to resume.
#include "io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace cgm {

// How an epoch's examples become batches: mixed (a seeded shuffle cut in order) or round_robin
// (each batch from one domain, domains in name order by turns: the seed's CGM training).
enum class Batching { mixed, round_robin };
Batching parse_batching(const std::string & name);  // "mixed" | "round-robin"

// What "the best model" means: the highest validation accuracy or the lowest validation loss.
enum class BestMetric { accuracy, loss };

struct TrainOptions {
    double      lr            = 3e-3;
    int64_t     epochs        = 1;
    int64_t     steps         = 0;    // > 0: this many optimizer steps, whatever `epochs` says
    int64_t     batch_size    = 16;
    int64_t     grad_accum    = 1;
    double      max_grad_norm = 1.0;  // 0: no clipping
    std::string schedule      = "constant";
    int64_t     warmup        = 0;
    double      weight_decay  = 0.0;
    BestMetric  best_metric   = BestMetric::accuracy;
    int64_t     patience      = 0;    // evaluations without a better best_metric before stopping (0: never)
    int64_t     eval_every    = 0;    // optimizer steps between evaluations (0: once per epoch)
    int64_t     save_every    = 0;    // steps between checkpoints besides those at evaluations (0: none)
    int64_t     save_total_limit = 1; // checkpoints kept, the newest
    int64_t     log_every     = 10;
    uint64_t    seed          = 0;
    bool        resume        = false;
    Batching    batching      = Batching::mixed;
};

struct EvalMetrics {
    double loss     = 0;
    double accuracy = 0;
    // More figures of the validation pass (a gate's analytics): metrics.csv columns val_<name>.
    std::map<std::string, double> extra = {};
};

// What is trained, one per (model, task): the trainer only sees batches of example indices, a loss
// and an evaluation.
class TrainTask {
  public:
    virtual ~TrainTask() = default;
    virtual int64_t num_examples() const = 0;
    // The domain of every training example, for round-robin batching; empty: all one domain.
    virtual std::vector<std::string> example_domains() const { return {}; }
    virtual NamedTensors trainable() = 0;                               // tensors with requires_grad
    virtual at::Tensor   loss(const std::vector<int64_t> & batch) = 0;  // scalar, in training mode
    // How many terms loss(batch) is the mean of (target tokens, images): a step's micro-batches
    // (and ranks) are weighted by it, so the step's loss is the mean over all its terms.
    virtual double       loss_weight(const std::vector<int64_t> & batch) const { return static_cast<double>(batch.size()); }
    virtual EvalMetrics  evaluate() = 0;                                // on the validation data
    virtual void         set_epoch(int64_t /*epoch*/) {}                // before each batch: schedules that move per epoch
    virtual void         save(const std::string & dir) = 0;             // the model files
};

// What a gate adds to its task's training: a penalty on every batch's loss (the gate weights'
// regularisers) and a schedule run at each epoch (the gate's temperature); empty: none.
struct TrainingHooks {
    std::function<at::Tensor()>  penalty;
    std::function<void(int64_t)> on_epoch;
};

struct TrainResult {
    int64_t     steps         = 0;
    std::string best_metric;        // "val_accuracy" | "val_loss"
    double      best          = 0;  // its best value (0 when no evaluation ran)
    int64_t     best_step     = 0;
    bool        stopped_early = false;
};

// "best val accuracy 0.5000 at step 20 of 40 (stopped early)": the line programs print at the end.
std::string describe(const TrainResult & r);

// The batches of one epoch (as many in every epoch), seeded by (seed, epoch) so that a resumed or
// repeated run sees the same ones.
std::vector<std::vector<int64_t>> epoch_batches(const TrainTask & task, int64_t epoch, const TrainOptions & options);

TrainResult train(TrainTask & task, const TrainOptions & options, const std::string & out_dir);

}  // namespace cgm
