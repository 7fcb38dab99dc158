#pragma once
// A BEiT base as the programs use it: the model and how images become its pixel values.
#include "models/beit.h"
#include "vision/image_processor.h"

#include <string>

namespace cgm {

struct BeitBase {
    std::string          dir;
    BeitModel            model;
    ImageProcessorConfig processor;
};

// The folder's preprocessor_config.json when it has one; else transformers' BEiT defaults without
// the center crop, resizing to the model's image size.
BeitBase             load_beit_base(const std::string & dir, c10::ScalarType dtype, c10::Device device);
ImageProcessorConfig image_processor_of(const std::string & dir, const BeitConfig & config);

// images: [B, H, W, 3] uint8 -> pixel values [B, 3, S, S] float32 on `device`.
at::Tensor pixel_values(const ImageProcessorConfig & processor, const at::Tensor & images, c10::Device device);

}  // namespace cgm
