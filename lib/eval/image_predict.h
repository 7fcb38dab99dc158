#pragma once
// A BEiT classifier's answers on labelled images: the predicted class of every image, its loss,
// and the class indices that classification metrics take.
#include "adapters/lora_mixture.h"
#include "eval/prediction.h"
#include "models/beit_base.h"
#include "vision/image_set.h"

#include <cstdint>
#include <vector>

namespace cgm {

struct ImagePredictions {
    PredictResult        result;     // ids "<domain>/<index>", class names as target and answer
    std::vector<int64_t> targets;    // class indices, in example order
    std::vector<int64_t> predicted;
};

// gate_log (optional) is enabled around each batch's forward pass: one row per image, in order.
ImagePredictions predict_images(BeitBase & base, const ImageSet & images, int64_t batch_size, GateLog * gate_log = nullptr);

}  // namespace cgm
