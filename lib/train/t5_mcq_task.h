#pragma once
// Training a T5 on multiple-choice records: teacher-forced loss on the answer, validation by
// the chosen scoring. Which tensors train and how the result is saved are given by the caller
// (LoRA adapter, full weights, or a gate over experts).
#include "eval/routing.h"
#include "eval/t5_predict.h"
#include "models/t5.h"
#include "train/trainer.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct T5McqTaskSpec {
    TextSetup                                 setup;
    Scoring                                   val_scoring     = Scoring::generate;
    int64_t                                   eval_batch_size = 32;
    NamedTensors                              trainable;
    std::function<void(const std::string &)> save;
    std::optional<GateProbe>                  gate = std::nullopt;  // a gate's analytics in every validation
    TrainingHooks                             hooks = {};
};

class T5McqTask : public TrainTask {
  public:
    T5McqTask(T5Model & model, const T5Tokenizer & tokenizer, const std::vector<McqRecord> & train,
              std::vector<McqRecord> val, T5McqTaskSpec spec);

    int64_t      num_examples() const override { return static_cast<int64_t>(train_.size()); }
    std::vector<std::string> example_domains() const override { return train_domains_; }
    NamedTensors trainable() override { return spec_.trainable; }
    at::Tensor   loss(const std::vector<int64_t> & batch) override;
    double       loss_weight(const std::vector<int64_t> & batch) const override;  // target tokens in the loss
    EvalMetrics  evaluate() override;
    void                     save(const std::string & dir) override { spec_.save(dir); }
    void                     set_epoch(int64_t epoch) override {
        if (spec_.hooks.on_epoch) {
            spec_.hooks.on_epoch(epoch);
        }
    }

  private:
    T5Model &                   model_;
    const T5Tokenizer &         tokenizer_;
    std::vector<Seq2SeqExample> train_;
    std::vector<std::string>    train_domains_;
    std::vector<McqRecord>      val_;
    T5McqTaskSpec               spec_;
};

}  // namespace cgm
