#pragma once
// Image resizing that reproduces Pillow's Image.resize((width, height), resample) byte for byte
// (reducing_gap=None, the whole image as the box), as transformers' image processors use it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace cgm {

// Pillow's filters, numbered as PIL.Image.Resampling (the `resample` of a preprocessor_config.json).
enum class Resample : int { nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5 };

// The filter Pillow numbers `code`; any other number is an Error naming `where`.
Resample resample_from_pil(int64_t code, const std::string & where);

// When both sides change, Pillow runs a horizontal and a vertical pass, each rounded to 8 bits.
// Which one runs first depends on the release, and moves a few pixels by a unit or more.
enum class PillowRelease {
    before_12_2,  // always horizontal first (the releases transformers 4.x was used with)
    from_12_2,    // 12.2, 12.3: vertical first when the image is over 100 times taller than wide and shrinks in height
    from_13,      // 13.0 on: vertical first when the height loses more than twice as many pixels as the width
};

// image: [H, W, C] uint8 -> [height, width, C] uint8. Every channel is resampled on its own, as
// Pillow does for modes L and RGB (not RGBA, which Pillow premultiplies by alpha first).
at::Tensor pil_resize(const at::Tensor & image, int64_t height, int64_t width, Resample filter,
                      PillowRelease release = PillowRelease::before_12_2);

}  // namespace cgm
