#pragma once
// PNG, JPEG, BMP and GIF (first frame) files -> RGB pixels, as PIL's Image.open(f).convert("RGB")
// gives them: grayscale is repeated over the three channels, palettes are looked up, alpha is
// dropped (not blended), 16-bit gray is clamped at 255. JPEG comes from stb's decoder, not
// libjpeg's, so its pixels may differ from PIL's by a few units. A file that is not one of these
// images, is corrupt or truncated, or declares more pixels than the limits below is an Error naming
// the file; nothing is allocated for the pixels before the header's size has been checked. EXIF
// orientation is not applied (PIL's open does not either).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace cgm {

constexpr int64_t kMaxImageSide = 32768;

// The pixel budget: an image of more pixels (width x height) is refused from its header, before
// anything is allocated for its pixels. The default is Pillow's DecompressionBombError threshold
// (2 x Image.MAX_IMAGE_PIXELS = 2 x 89,478,485), so that every image Pillow opens opens here too;
// at the budget the decoded [H, W, 3] image takes 537 MB. Process-wide; an Error below 1.
constexpr int64_t kDefaultMaxImagePixels = 2 * int64_t{ 89478485 };
void              set_max_image_pixels(int64_t pixels);
int64_t           max_image_pixels();

// The image in a file: [H, W, 3] uint8.
at::Tensor decode_image_file(const std::string & path);

// The image in `size` bytes of memory: [H, W, 3] uint8; `where` names the source in errors.
at::Tensor decode_image(const uint8_t * data, size_t size, const std::string & where);

}  // namespace cgm
