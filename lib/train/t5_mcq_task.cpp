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

std::vector<std::vector<int64_t>> T5McqTask::epoch_batches(int64_t epoch, int64_t batch_size, uint64_t seed) const {
    if (!spec_.round_robin) {
        return TrainTask::epoch_batches(epoch, batch_size, seed);
    }
    // Per domain (in name order): a seeded shuffle cut into batches; then one batch of each in turn.
    std::map<std::string, std::vector<int64_t>> by_domain;
    for (size_t i = 0; i < train_domains_.size(); ++i) {
        by_domain[train_domains_[i]].push_back(static_cast<int64_t>(i));
    }
    std::mt19937_64                                rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
    std::vector<std::vector<std::vector<int64_t>>> queues;
    for (auto & [domain, indices] : by_domain) {
        std::shuffle(indices.begin(), indices.end(), rng);
        queues.emplace_back();
        for (size_t i = 0; i < indices.size(); i += static_cast<size_t>(batch_size)) {
            const auto end = std::min(indices.size(), i + static_cast<size_t>(batch_size));
            queues.back().emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(i),
                                       indices.begin() + static_cast<std::ptrdiff_t>(end));
        }
    }
    std::vector<std::vector<int64_t>> batches;
    for (size_t round = 0, added = 1; added > 0; ++round) {
        added = 0;
        for (const auto & q : queues) {
            if (round < q.size()) {
                batches.push_back(q[round]);
                ++added;
            }
        }
    }
    return batches;
}

at::Tensor T5McqTask::loss(const std::vector<int64_t> & batch) {
    model_.set_training(true);
    const Seq2SeqBatch b      = make_batch(train_, batch, tokenizer_.pad_id());
    const auto         device = model_.device();
    return model_.forward(b.input_ids.to(device), b.attention_mask.to(device), {}, b.labels.to(device)).loss;
}

EvalMetrics T5McqTask::evaluate() {
    model_.set_training(false);
    const PredictResult r = predict_mcq(model_, tokenizer_, val_, spec_.setup, spec_.val_scoring, spec_.eval_batch_size);
    double              correct = 0, labeled = 0;
    for (const auto & p : r.predictions) {
        if (!p.target.empty()) {
            correct += p.correct ? 1 : 0;
            labeled += 1;
        }
    }
    return { r.loss, labeled > 0 ? correct / labeled : 0.0 };
}

}  // namespace cgm
