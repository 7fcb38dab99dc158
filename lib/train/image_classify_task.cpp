#include "train/image_classify_task.h"

#include "core/error.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

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
    return base_.model.forward(pixels, train_.labels.index_select(0, rows).to(base_.model.device())).loss;
}

EvalMetrics ImageClassifyTask::evaluate() {
    base_.model.set_training(false);
    c10::NoGradGuard no_grad;
    double           loss = 0, correct = 0;
    const int64_t    n    = val_.size();
    for (int64_t start = 0; start < n; start += spec_.eval_batch_size) {
        const int64_t    end    = std::min(n, start + spec_.eval_batch_size);
        const at::Tensor labels = val_.labels.slice(0, start, end).to(base_.model.device());
        const BeitOutput out =
            base_.model.forward(pixel_values(base_.processor, val_.images.slice(0, start, end), base_.model.device()), labels);
        loss += out.loss.item<double>() * static_cast<double>(end - start);
        correct += out.logits.argmax(-1).eq(labels).sum().item<double>();
    }
    return { n ? loss / static_cast<double>(n) : 0.0, n ? correct / static_cast<double>(n) : 0.0 };
}

}  // namespace cgm
