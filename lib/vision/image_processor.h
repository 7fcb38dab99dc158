#pragma once
// transformers' BeitImageProcessor (and ViTImageProcessor) as configured by a
// preprocessor_config.json: PIL resize on uint8 -> center crop -> rescale -> normalize -> CHW
// float32, with transformers' arithmetic (crop offset (H - h) // 2, zero padding where the crop is
// larger than the image, rescale in float64 then float32, normalize in float32).
#include "vision/pil_resize.h"

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct ImageProcessorConfig {
    std::string           source;  // the file it was read from, for errors
    bool                  do_resize      = true;
    int64_t               resize_height  = 256;
    int64_t               resize_width   = 256;
    Resample              resample       = Resample::bicubic;
    PillowRelease         pillow         = PillowRelease::before_12_2;  // not in the file: whose resize to match
    bool                  do_center_crop = true;
    int64_t               crop_height    = 224;
    int64_t               crop_width     = 224;
    bool                  do_rescale     = true;
    double                rescale_factor = 1.0 / 255.0;
    bool                  do_normalize   = true;
    std::array<double, 3> image_mean     = { 0.5, 0.5, 0.5 };
    std::array<double, 3> image_std      = { 0.5, 0.5, 0.5 };
};

// Reads a preprocessor_config.json. Keys it lacks take the defaults transformers 4.x gives its
// image_processor_type (or legacy feature_extractor_type): BeitImageProcessor (also when neither is
// given) or ViTImageProcessor (224x224 bilinear, never a center crop). Any other type, a malformed
// value or a size without height and width is an Error naming the file.
ImageProcessorConfig read_image_processor_config(const std::string & path);

// image: [H, W, 3] uint8 -> pixel values [3, H', W'] float32.
at::Tensor preprocess_image(const ImageProcessorConfig & config, const at::Tensor & image);

// Each image [H_i, W_i, 3] uint8 -> [N, 3, H', W'] float32. All must come out the same size (they
// do whenever the config resizes or crops); otherwise, or with no image, an Error.
at::Tensor preprocess_images(const ImageProcessorConfig & config, const std::vector<at::Tensor> & images);

}  // namespace cgm
