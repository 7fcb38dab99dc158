#pragma once
// What an image file's bytes show before any pixel is decoded: its format, from the signature, and
// the structural faults stb_image 2.27 would not refuse by itself (a truncated BMP or GIF decodes to
// zeros, a JPEG Huffman table with over 256 codes overruns stb's tables) or would refuse only after
// allocating what a PNG chunk's length declares.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace cgm {

enum class ImageFormat { Png, Jpeg, Bmp, Gif, Unknown };

ImageFormat  sniff_image_format(const uint8_t * data, size_t size);
const char * image_format_name(ImageFormat format);

// Width and height as the header declares them (PNG IHDR, GIF logical screen, BMP info header);
// nothing for JPEG, whose frame header comes later, or when the file is too short to hold them.
std::optional<std::pair<int64_t, int64_t>> declared_size(ImageFormat format, const uint8_t * data, size_t size);

// The first structural fault found ("truncated pixel data ..."), or "" when there is none.
std::string image_structure_fault(ImageFormat format, const uint8_t * data, size_t size);

// A GIF's first frame as PIL shows it: the frame's rectangle on the logical screen, and the colour
// PIL gives its transparent pixels and everything outside the rectangle (the transparent index's
// palette colour, or index 0's without transparency), where stb leaves black or the background.
struct GifFirstFrame {
    int64_t left = 0, top = 0, width = 0, height = 0;
    bool    has_transparency = false;
    uint8_t fill[3]          = { 0, 0, 0 };
    bool    data_complete    = false;  // the frame's LZW sub-blocks all end inside the file
};

// Nothing when a block before the first frame is not a GIF block; data_complete false when the
// file ends before the first frame's data does.
std::optional<GifFirstFrame> gif_first_frame(const uint8_t * data, size_t size);

}  // namespace cgm
