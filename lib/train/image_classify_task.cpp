#include "train/image_classify_task.h"

#include "core/error.h"
#include "eval/image_predict.h"

#include <ATen/ATen.h>

namespace cgm {

namespace {

void check_labels(const ImageSet & set, int64_t num_labels, const char * which) {
    if (set.size() > 0 && set.labels.max().item<int64_t>() >= num_labels) {
        throw Error(std::string(which) + ": label " + std::to_string(set.labels.max().item<int64_t>()) +
                    " is outside the model's " + std::to_string(num_labels) +
                    " classes (give the base a head for these classes: save-base --labels)");
    }
}

}  // namespace

ImageClassifyTask::ImageClassifyTask(BeitBase & base, ImageSet train, ImageSet val, ImageClassifyTaskSpec spec)
    : base_(base), train_(std::move(train)), val_(std::move(val)), spec_(std::move(spec)) {
    check_labels(train_, base_.model.config().num_labels(), "--train");
    check_labels(val_, base_.model.config().num_labels(), "--val");
}

at::Tensor ImageClassifyTask::loss(const std::vector<int64_t> & batch) {
    base_.model.set_training(true);
    const at::Tensor rows   = at::tensor(batch, at::kLong);
    const at::Tensor pixels = pixel_values(base_.processor, train_.images.index_select(0, rows), base_.model.device());
    const at::Tensor loss   = base_.model.forward(pixels, train_.labels.index_select(0, rows).to(base_.model.device())).loss;
    return spec_.hooks.penalty ? loss + spec_.hooks.penalty() : loss;
}

EvalMetrics ImageClassifyTask::evaluate() {
    const ImagePredictions p = predict_images(base_, val_, spec_.eval_batch_size, spec_.gate ? spec_.gate->log : nullptr);
    double                 correct = 0;
    for (const Prediction & r : p.result.predictions) {
        correct += r.correct ? 1.0 : 0.0;
    }
    const auto n = static_cast<double>(p.result.predictions.size());
    return { p.result.loss, n > 0 ? correct / n : 0.0,
             spec_.gate ? gate_figures(*spec_.gate, p.result.predictions, true) : std::map<std::string, double>{} };
}

}  // namespace cgm
