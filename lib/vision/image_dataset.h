#pragma once
// The image shards prepare-data writes and the training programs read: DIR/<split>.safetensors
// with `images` uint8 [N, H, W, 3] and `labels` int64 [N], and DIR/dataset.json whose `classes`
// lists the class names in label order.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace cgm {

struct ImageSplit {
    at::Tensor               images;  // [N, H, W, 3] uint8
    at::Tensor               labels;  // [N] int64
    std::vector<std::string> class_names;
};

// images: [N, H, W, 3] uint8, labels: [N] int64; written atomically.
void write_image_split(const std::string & path, const at::Tensor & images, const at::Tensor & labels);

// DIR/<split>.safetensors, checked against DIR/dataset.json: a missing tensor, a wrong dtype or
// shape, counts that differ, or a label outside the classes is an Error naming the file.
ImageSplit read_image_split(const std::string & dir, const std::string & split);

}  // namespace cgm
