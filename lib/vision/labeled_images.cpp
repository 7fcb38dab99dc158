#include "vision/labeled_images.h"

#include "core/error.h"
#include "vision/pil_resize.h"

#include <algorithm>

namespace cgm {

void LabeledImages::add(const at::Tensor & image, int64_t label, int64_t image_size, const std::string & where) {
    // image: [H, W, 3] uint8
    const int64_t h = image.size(0), w = image.size(1);
    if (image_size == 0) {
        if (!images.empty() && (images.front().size(0) != h || images.front().size(1) != w)) {
            fail(where, "image is " + std::to_string(w) + "x" + std::to_string(h) + " but the first one is " +
                            std::to_string(images.front().size(1)) + "x" + std::to_string(images.front().size(0)) +
                            "; with --image-size 0 every image must have one size");
        }
        images.push_back(image);
    } else if (h == image_size && w == image_size) {
        images.push_back(image);
    } else {
        images.push_back(pil_resize(image, image_size, image_size, Resample::bicubic));
    }
    labels.push_back(label);
}

void LabeledImages::skip(const std::string & reason) {
    if (skipped_first.size() < kSkippedListed) {
        skipped_first.push_back(reason);
    }
    ++skipped;
}

int64_t LabeledImages::count(int64_t label) const {
    return std::count(labels.begin(), labels.end(), label);
}

}  // namespace cgm
