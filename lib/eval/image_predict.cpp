#include "eval/image_predict.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <chrono>

namespace cgm {

ImagePredictions predict_images(BeitBase & base, const ImageSet & images, int64_t batch_size, GateLog * gate_log) {
    base.model.set_training(false);
    c10::NoGradGuard no_grad;
    ImagePredictions out;
    double           loss = 0;
    const int64_t    n    = images.size();
    for (int64_t start = 0, end = 0; start < n; start = end) {
        end = static_cast<int64_t>(batch_end(static_cast<size_t>(start), static_cast<size_t>(n), static_cast<size_t>(batch_size),
                                             [&](size_t i) -> const std::string & { return images.domains[i]; }));
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
        loss += r.loss.item<double>() * static_cast<double>(end - start);
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
    out.result.loss = n ? loss / static_cast<double>(n) : 0.0;
    return out;
}

}  // namespace cgm
