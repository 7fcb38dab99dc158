#include "eval/image_predict.h"

#include "eval/prediction_shares.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <chrono>

namespace cgm {

ImagePredictions predict_images(BeitBase & base, const ImageSet & images, int64_t batch_size, GateLog * gate_log) {
    base.model.set_training(false);
    c10::NoGradGuard no_grad;
    ImagePredictions out;
    const auto       log_before = log_sizes(gate_log);
    for (const auto & [first, last] : rank_batches(static_cast<size_t>(images.size()), static_cast<size_t>(batch_size),
                                                   [&](size_t i) -> const std::string & { return images.domains[i]; })) {
        const auto       start  = static_cast<int64_t>(first), end = static_cast<int64_t>(last);
        const at::Tensor labels = images.labels.slice(0, start, end);  // [b]
        if (gate_log != nullptr) {
            gate_log->enabled = true;
        }
        const auto       started = std::chrono::steady_clock::now();
        const BeitOutput r = base.model.forward(pixel_values(base.processor, images.images.slice(0, start, end),
                                                             base.model.device()),
                                                labels.to(base.model.device()));
        if (gate_log != nullptr) {
            gate_log->enabled = false;
        }
        out.result.batches.push_back({ r.loss.item<double>(), static_cast<double>(end - start) });
        const at::Tensor best = r.logits.argmax(-1).to(at::kCPU);  // [b]
        out.result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        for (int64_t i = start; i < end; ++i) {
            const std::string & domain = images.domains[static_cast<size_t>(i)];
            const int64_t       target = labels[i - start].item<int64_t>(), guess = best[i - start].item<int64_t>();
            out.result.predictions.push_back({ domain + "/" + std::to_string(i), domain, images.class_name(domain, target),
                                               images.class_name(domain, guess), target == guess });
            out.targets.push_back(target);
            out.predicted.push_back(guess);
        }
    }
    join_shares(out.result, gate_log, log_before, { &out.targets, &out.predicted });
    return out;
}

}  // namespace cgm
