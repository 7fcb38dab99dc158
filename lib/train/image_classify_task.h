#pragma once
// Training a BEiT on labelled images: cross-entropy on the class, validation accuracy and loss.
// Which tensors train and how the result is saved are given by the caller (all weights, a LoRA
// adapter with its saved head, or a gate over experts).
#include "eval/routing.h"
#include "models/beit_base.h"
#include "train/trainer.h"
#include "vision/image_set.h"

#include <functional>
#include <optional>
#include <string>

namespace cgm {

struct ImageClassifyTaskSpec {
    int64_t                                   eval_batch_size = 32;
    NamedTensors                              trainable;
    std::function<void(const std::string &)> save;
    std::optional<GateProbe>                  gate = std::nullopt;  // a gate's analytics in every validation
    TrainingHooks                             hooks = {};
};

class ImageClassifyTask : public TrainTask {
  public:
    // Labels must be classes of the model's head; an Error names the first that is not.
    ImageClassifyTask(BeitBase & base, ImageSet train, ImageSet val, ImageClassifyTaskSpec spec);

    int64_t                  num_examples() const override { return train_.size(); }
    std::vector<std::string> example_domains() const override { return train_.domains; }
    NamedTensors             trainable() override { return spec_.trainable; }
    at::Tensor               loss(const std::vector<int64_t> & batch) override;
    EvalMetrics              evaluate() override;
    void                     save(const std::string & dir) override { spec_.save(dir); }
    void                     set_epoch(int64_t epoch) override {
        if (spec_.hooks.on_epoch) {
            spec_.hooks.on_epoch(epoch);
        }
    }

  private:
    BeitBase &            base_;
    ImageSet              train_;
    ImageSet              val_;
    ImageClassifyTaskSpec spec_;
};

}  // namespace cgm
