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

constexpr int64_t kMaxImageSide   = 32768;
constexpr int64_t kMaxImagePixels = int64_t{ 1 } << 26;

// The image in a file: [H, W, 3] uint8.
at::Tensor decode_image_file(const std::string & path);

// The image in `size` bytes of memory: [H, W, 3] uint8; `where` names the source in errors.
at::Tensor decode_image(const uint8_t * data, size_t size, const std::string & where);

}  // namespace cgm
