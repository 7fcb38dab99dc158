#include "vision/image_decode.h"

#include "core/error.h"
#include "vision/image_format.h"

#include <ATen/ops/empty.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

// Only the four formats sniff_image_format admits are compiled in: stb's other decoders (TGA
// above all) would accept arbitrary bytes as an image.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

namespace cgm {
namespace {

std::string stb_reason() {
    const char * why = stbi_failure_reason();
    return why != nullptr ? why : "unknown reason";
}

struct StbFree {
    void operator()(void * p) const { stbi_image_free(p); }
};

// pixels: [h, w, 4] from stb -> dst: [h, w, 3] as PIL shows the first frame.
void gif_as_pil(const uint8_t * pixels, int64_t w, int64_t h, const GifFirstFrame & f, uint8_t * dst) {
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            const uint8_t * px     = pixels + 4 * (y * w + x);
            const bool      inside = x >= f.left && x < f.left + f.width && y >= f.top && y < f.top + f.height;
            const bool      shown  = inside && !(f.has_transparency && px[3] == 0);
            std::copy_n(shown ? px : f.fill, 3, dst + 3 * (y * w + x));
        }
    }
}

std::atomic<int64_t> g_max_image_pixels{ kDefaultMaxImagePixels };

}  // namespace

void set_max_image_pixels(int64_t pixels) {
    if (pixels < 1) {
        throw Error("image pixel budget must be at least 1, got " + std::to_string(pixels));
    }
    g_max_image_pixels = pixels;
}

int64_t max_image_pixels() {
    return g_max_image_pixels;
}

at::Tensor decode_image(const uint8_t * data, size_t size, const std::string & where) {
    if (size == 0) {
        fail(where, "empty file, not an image");
    }
    const ImageFormat format = sniff_image_format(data, size);
    if (format == ImageFormat::Unknown) {
        fail(where, "not a PNG, JPEG, BMP or GIF image");
    }
    if (size > static_cast<size_t>(INT_MAX)) {
        fail(where, "file of " + std::to_string(size) + " bytes is too large to decode");
    }
    const std::string kind       = image_format_name(format);
    const int64_t     budget     = max_image_pixels();
    const auto        check_size = [&](int64_t w, int64_t h) {
        if (w < 1 || h < 1 || w > kMaxImageSide || h > kMaxImageSide) {
            fail(where, kind + " image of " + std::to_string(w) + "x" + std::to_string(h) +
                            " pixels is refused (limits: 1 to " + std::to_string(kMaxImageSide) + " a side)");
        }
        if (w * h > budget) {
            fail(where, kind + " image of " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                            std::to_string(w * h) + " pixels is refused: over the budget of " +
                            std::to_string(budget) + " pixels");
        }
    };
    // All before stb reads anything: its header parsing already builds the JPEG Huffman tables.
    if (const auto declared = declared_size(format, data, size)) {
        check_size(declared->first, declared->second);
    }
    const std::string fault = image_structure_fault(format, data, size);
    if (!fault.empty()) {
        fail(where, "corrupt " + kind + ": " + fault);
    }
    const int len = static_cast<int>(size);
    int       w = 0, h = 0, channels = 0;
    if (stbi_info_from_memory(data, len, &w, &h, &channels) == 0) {
        fail(where, "corrupt " + kind + " header (" + stb_reason() + ")");
    }
    check_size(w, h);

    // The output is allocated once stb has decoded the pixels, so a corrupt file costs one buffer.
    const auto output = [&] { return at::empty({ h, w, 3 }, at::kByte); };  // [H, W, 3]
    int        dw = 0, dh = 0, ignored = 0;
    if (format == ImageFormat::Png && channels == 1 && stbi_is_16_bit_from_memory(data, len) != 0) {
        // PIL opens 16-bit grayscale as mode I;16, whose conversion to RGB clamps each value to
        // 255 (stb's 8-bit path would keep the high byte instead).
        std::unique_ptr<stbi_us, StbFree> px(stbi_load_16_from_memory(data, len, &dw, &dh, &ignored, 1));
        if (!px || dw != w || dh != h) {
            fail(where, "corrupt or truncated " + kind + " data (" + stb_reason() + ")");
        }
        at::Tensor out = output();
        uint8_t *  dst = out.data_ptr<uint8_t>();
        for (int64_t i = 0; i < int64_t{ w } * h; ++i) {
            const auto v = static_cast<uint8_t>(std::min<int>(px.get()[i], 255));
            std::fill_n(dst + 3 * i, 3, v);
        }
        return out;
    }
    const std::optional<GifFirstFrame> gif = format == ImageFormat::Gif ? gif_first_frame(data, size) : std::nullopt;
    std::unique_ptr<stbi_uc, StbFree>  px(stbi_load_from_memory(data, len, &dw, &dh, &ignored, gif ? 4 : 3));
    if (!px || dw != w || dh != h) {
        fail(where, "corrupt or truncated " + kind + " data (" + stb_reason() + ")");
    }
    at::Tensor out = output();
    uint8_t *  dst = out.data_ptr<uint8_t>();
    if (gif) {
        gif_as_pil(px.get(), w, h, *gif, dst);
    } else {
        std::memcpy(dst, px.get(), static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
    }
    return out;
}

at::Tensor decode_image_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in || std::filesystem::is_directory(path)) {
        fail(path, "cannot open (missing or unreadable)");
    }
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    in.seekg(0, std::ios::beg);
    std::vector<uint8_t> bytes(static_cast<size_t>(std::max<std::streamoff>(size, 0)));
    if (size < 0 || !in.read(reinterpret_cast<char *>(bytes.data()), size)) {
        fail(path, "read error");
    }
    return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace cgm
