#include "train/t5_mcq_task.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <random>

namespace cgm {

T5McqTask::T5McqTask(T5Model & model, const T5Tokenizer & tokenizer, const std::vector<McqRecord> & train,
                     std::vector<McqRecord> val, T5McqTaskSpec spec)
    : model_(model), tokenizer_(tokenizer), val_(std::move(val)), spec_(std::move(spec)) {
    for (const auto & r : train) {
        if (r.label < 0) {
            throw Error("training record '" + r.id + "' has no label");
        }
    }
    train_ = tokenize_records(tokenizer, train, spec_.setup);
    for (const auto & r : train) {
        train_domains_.push_back(r.domain);
    }
}

at::Tensor T5McqTask::loss(const std::vector<int64_t> & batch) {
    model_.set_training(true);
    const Seq2SeqBatch b      = make_batch(train_, batch, tokenizer_.pad_id(), spec_.setup);
    const auto         device = model_.device();
    const at::Tensor loss = model_.forward(b.input_ids.to(device), b.attention_mask.to(device), {}, b.labels.to(device)).loss;
    return spec_.hooks.penalty ? loss + spec_.hooks.penalty() : loss;
}

double T5McqTask::loss_weight(const std::vector<int64_t> & batch) const {
    return static_cast<double>(make_batch(train_, batch, tokenizer_.pad_id(), spec_.setup).labels.ne(-100).sum().item<int64_t>());
}

EvalMetrics T5McqTask::evaluate() {
    model_.set_training(false);
    const PredictResult r = predict_mcq(model_, tokenizer_, val_, spec_.setup, spec_.val_scoring, spec_.eval_batch_size,
                                        spec_.gate ? spec_.gate->log : nullptr);
    double              correct = 0, labeled = 0;
    for (const auto & p : r.predictions) {
        if (!p.target.empty()) {
            correct += p.correct ? 1 : 0;
            labeled += 1;
        }
    }
    return { r.loss, labeled > 0 ? correct / labeled : 0.0,
             spec_.gate ? gate_figures(*spec_.gate, r.predictions, false) : std::map<std::string, double>{} };
}

}  // namespace cgm
