// Image decoding: every PNG colour type, BMP, JPEG and GIF decode to the RGB values PIL's
// Image.open(f).convert("RGB") gives; anything that is not a complete image of a sane size is one
// line naming the file.
#include "core/error.h"
#include "support/error_of.h"
#include "support/temp_dir.h"
#include "vision/image_decode.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;

namespace {

constexpr int kW = 7, kH = 5;

// kH x kW pixels of `channels` bytes, all different.
std::vector<uint8_t> pixels(int channels) {
    std::vector<uint8_t> p(static_cast<size_t>(kW * kH * channels));
    for (size_t i = 0; i < p.size(); ++i) {
        p[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
    }
    return p;
}

// What PIL's convert("RGB") makes of them: gray repeated, alpha dropped.
at::Tensor as_rgb(const std::vector<uint8_t> & p, int channels) {
    at::Tensor out = at::empty({ kH, kW, 3 }, at::kByte);
    uint8_t *  o   = out.data_ptr<uint8_t>();
    for (int i = 0; i < kW * kH; ++i) {
        for (int c = 0; c < 3; ++c) {
            o[3 * i + c] = p[static_cast<size_t>(i * channels + (channels <= 2 ? 0 : c))];
        }
    }
    return out;
}

at::Tensor rgb(const std::vector<int> & values, int64_t h, int64_t w) {
    return at::tensor(values, at::kInt).to(at::kByte).view({ h, w, 3 });
}

std::string be32(uint32_t v) {
    return { static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v) };
}

uint32_t crc32(const std::string & bytes) {
    uint32_t c = 0xffffffffu;
    for (const char b : bytes) {
        c ^= static_cast<uint8_t>(b);
        for (int k = 0; k < 8; ++k) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

std::string chunk(const std::string & type, const std::string & data) {
    return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

std::string ihdr(uint32_t w, uint32_t h, int depth, int color) {
    return chunk("IHDR", be32(w) + be32(h) + std::string{ static_cast<char>(depth), static_cast<char>(color), 0, 0, 0 });
}

// A PNG written by hand: `rows` (each with its filter byte) in one stored deflate block, and any
// chunks (PLTE, tRNS) before the data.
std::string png(uint32_t w, uint32_t h, int depth, int color, const std::string & rows, const std::string & chunks = "") {
    uint32_t a = 1, b = 0;  // adler32
    for (const char c : rows) {
        a = (a + static_cast<uint8_t>(c)) % 65521;
        b = (b + a) % 65521;
    }
    const auto  n    = static_cast<uint16_t>(rows.size());
    std::string zlib = std::string("\x78\x01\x01", 3) + static_cast<char>(n & 0xff) + static_cast<char>(n >> 8) +
                       static_cast<char>(~n & 0xff) + static_cast<char>((~n >> 8) & 0xff) + rows + be32((b << 16) | a);
    return "\x89PNG\r\n\x1a\n" + ihdr(w, h, depth, color) + chunks + chunk("IDAT", zlib) + chunk("IEND", "");
}

std::string as_string(const std::vector<uint8_t> & v) {
    return std::string(v.begin(), v.end());
}

// The one-line error naming the file that decoding `path` gives.
std::string decode_error(const std::string & path) {
    const std::string what = error_of([&] { decode_image_file(path); });
    REQUIRE_THAT(what, Contains(path));
    REQUIRE(what.find('\n') == std::string::npos);
    return what;
}

// A GIF with a 4-colour palette on a 4x3 screen whose first frame covers only (1,1)-(2,2), with
// transparent index 2, followed by a second frame of index 3 everywhere.
const std::vector<uint8_t> kGif = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x04, 0x00, 0x03, 0x00, 0x81, 0x01, 0x00, 0xc8, 0x0a, 0x0a, 0x0a,
    0xc8, 0x0a, 0x0a, 0x0a, 0xc8, 0xfa, 0xfa, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x02, 0x00, 0x2c,
    0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x08, 0x07, 0x00, 0x01, 0x08, 0x18, 0x10, 0x20,
    0x20, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x08, 0x10, 0x00, 0x07, 0x0c,
    0x18, 0x30, 0x60, 0xc0, 0x80, 0x01, 0x03, 0x06, 0x0c, 0x18, 0x30, 0x20, 0x20, 0x00, 0x3b,
};

}  // namespace

TEST_CASE("PNG of every colour type decodes to PIL's RGB", "[unit][vision]") {
    TempDir dir;
    for (int channels = 1; channels <= 4; ++channels) {  // gray, gray+alpha, RGB, RGBA
        INFO(channels << " channels");
        const std::vector<uint8_t> p    = pixels(channels);
        const std::string          path = dir.file("c" + std::to_string(channels) + ".png");
        REQUIRE(stbi_write_png(path.c_str(), kW, kH, channels, p.data(), kW * channels) != 0);
        const at::Tensor img = decode_image_file(path);
        REQUIRE(img.sizes() == at::IntArrayRef({ kH, kW, 3 }));
        REQUIRE(img.scalar_type() == at::kByte);
        REQUIRE(at::equal(img, as_rgb(p, channels)));
    }

    // Palette with a transparent entry: PIL shows the palette colour, alpha dropped.
    const std::string plte = chunk("PLTE", std::string("\x10\x20\x30\x40\x50\x60\x70\x80\x90", 9));
    const std::string trns = chunk("tRNS", std::string("\xff\x00", 2));
    write_bytes(dir.file("p.png"), png(3, 1, 8, 3, std::string("\x00\x02\x01\x00", 4), plte + trns));
    const at::Tensor indexed = decode_image_file(dir.file("p.png"));
    REQUIRE(at::equal(indexed, rgb({ 0x70, 0x80, 0x90, 0x40, 0x50, 0x60, 0x10, 0x20, 0x30 }, 1, 3)));

    // 16-bit gray is PIL's mode I;16, which converts to RGB by clamping at 255; 16-bit RGB keeps the high byte.
    write_bytes(dir.file("g16.png"), png(4, 1, 16, 0, std::string("\x00\x00\x64\x00\xff\x01\x00\x03\xe8", 9)));
    const at::Tensor gray16 = decode_image_file(dir.file("g16.png"));
    REQUIRE(at::equal(gray16, rgb({ 100, 100, 100, 255, 255, 255, 255, 255, 255, 255, 255, 255 }, 1, 4)));
    write_bytes(dir.file("rgb16.png"), png(1, 1, 16, 2, std::string("\x00\x12\x34\xab\xcd\x00\xff", 7)));
    REQUIRE(at::equal(decode_image_file(dir.file("rgb16.png")), rgb({ 0x12, 0xab, 0x00 }, 1, 1)));
}

TEST_CASE("BMP decodes exactly, JPEG closely, GIF as PIL shows its first frame", "[unit][vision]") {
    TempDir dir;
    for (const int channels : { 1, 3 }) {
        const std::vector<uint8_t> p = pixels(channels);
        REQUIRE(stbi_write_bmp(dir.file("a.bmp").c_str(), kW, kH, channels, p.data()) != 0);
        REQUIRE(at::equal(decode_image_file(dir.file("a.bmp")), as_rgb(p, channels)));
    }

    // A smooth image at quality 95: decoders differ in rounding only (stb against libjpeg).
    std::vector<uint8_t> smooth(static_cast<size_t>(kW * kH * 3));
    for (size_t i = 0; i < smooth.size(); ++i) {
        smooth[i] = static_cast<uint8_t>(60 + 8 * (i / 3 % kW) + 10 * (i / 3 / kW) + 30 * (i % 3));
    }
    REQUIRE(stbi_write_jpg(dir.file("a.jpg").c_str(), kW, kH, 3, smooth.data(), 95) != 0);
    const at::Tensor jpeg = decode_image_file(dir.file("a.jpg"));
    REQUIRE(jpeg.sizes() == at::IntArrayRef({ kH, kW, 3 }));
    const at::Tensor diff = (jpeg.to(at::kInt) - as_rgb(smooth, 3).to(at::kInt)).abs();
    CHECK(diff.max().item<int>() <= 12);
    CHECK(diff.to(at::kFloat).mean().item<float>() <= 3.0f);

    // Outside the frame and where it is transparent, PIL shows the transparent index's colour.
    const at::Tensor gif = decode_image(kGif.data(), kGif.size(), "a.gif");
    const int        t[3] = { 10, 10, 200 };
    std::vector<int> expected;
    for (int i = 0; i < 12; ++i) {
        expected.insert(expected.end(), t, t + 3);
    }
    const std::vector<std::pair<int, std::vector<int>>> frame = {
        { 5, { 200, 10, 10 } }, { 9, { 250, 250, 0 } }, { 10, { 10, 200, 10 } }
    };
    for (const auto & [i, rgb] : frame) {
        std::copy(rgb.begin(), rgb.end(), expected.begin() + 3 * i);
    }
    REQUIRE(at::equal(gif, rgb(expected, 3, 4)));
}

TEST_CASE("Image decoding refuses every non-image with one line naming the file", "[unit][vision]") {
    TempDir                    dir;
    const std::vector<uint8_t> p = pixels(3);
    REQUIRE(stbi_write_png(dir.file("ok.png").c_str(), kW, kH, 3, p.data(), kW * 3) != 0);
    REQUIRE(stbi_write_bmp(dir.file("ok.bmp").c_str(), kW, kH, 3, p.data()) != 0);
    REQUIRE(stbi_write_jpg(dir.file("ok.jpg").c_str(), kW, kH, 3, p.data(), 90) != 0);
    write_bytes(dir.file("ok.gif"), as_string(kGif));
    const auto half = [&](const std::string & name) {
        const std::string whole = read_bytes(dir.file("ok." + name));
        write_bytes(dir.file("half." + name), whole.substr(0, whole.size() / 2));
        return dir.file("half." + name);
    };

    write_bytes(dir.file("empty.png"), "");
    REQUIRE_THAT(decode_error(dir.file("empty.png")), Contains("empty"));
    for (const std::string kind : { "png", "bmp", "jpg", "gif" }) {
        INFO(kind);
        REQUIRE_THAT(decode_error(half(kind)), Contains("corrupt"));
    }
    std::string noise(300, '\0');
    for (size_t i = 0; i < noise.size(); ++i) {
        noise[i] = static_cast<char>((i * 7919 + 13) % 251);
    }
    write_bytes(dir.file("noise.png"), noise);
    REQUIRE_THAT(decode_error(dir.file("noise.png")), Contains("not a PNG, JPEG, BMP or GIF"));
    write_bytes(dir.file("notes.jpg"), "just some text, no pixels\n");
    REQUIRE_THAT(decode_error(dir.file("notes.jpg")), Contains("not a PNG, JPEG, BMP or GIF"));
    REQUIRE_THAT(decode_error(dir.file("missing.png")), Contains("cannot open"));
    REQUIRE_THAT(decode_error(dir.path()), Contains("cannot open"));

    // Headers declaring absurd sizes (no pixel data follows): refused before any pixel is allocated.
    const auto header_only = [&](const std::string & name, uint32_t w, uint32_t h) {
        write_bytes(dir.file(name), "\x89PNG\r\n\x1a\n" + ihdr(w, h, 8, 2) + chunk("IEND", ""));
        return dir.file(name);
    };
    REQUIRE_THAT(decode_error(header_only("huge.png", 100000, 100000)), Contains("100000x100000") || Contains("too large"));
    REQUIRE_THAT(decode_error(header_only("many.png", 14000, 14000)), Contains("14000x14000 = 196000000 pixels is refused"));
    REQUIRE_THAT(decode_error(header_only("wide.png", 40000, 2)), Contains("40000x2 pixels is refused"));

    // A JPEG Huffman table claiming more than 256 codes (stb alone would overrun its tables).
    std::string jpeg = read_bytes(dir.file("ok.jpg"));
    const auto  dht  = jpeg.find("\xff\xc4");
    REQUIRE(dht != std::string::npos);
    jpeg[dht + 5] = '\xff';
    jpeg[dht + 6] = '\xff';
    write_bytes(dir.file("dht.jpg"), jpeg);
    REQUIRE_THAT(decode_error(dir.file("dht.jpg")), Contains("Huffman table"));
}

TEST_CASE("Image decoding refuses images over the pixel budget from their header", "[unit][vision]") {
    TempDir dir;
    REQUIRE(max_image_pixels() == kDefaultMaxImagePixels);
    const std::vector<uint8_t> p = pixels(3);
    REQUIRE(stbi_write_png(dir.file("ok.png").c_str(), kW, kH, 3, p.data(), kW * 3) != 0);
    REQUIRE(stbi_write_jpg(dir.file("ok.jpg").c_str(), kW, kH, 3, p.data(), 90) != 0);

    // The budget is process-wide: the default comes back at the end, whatever happens.
    struct Restore {
        ~Restore() { set_max_image_pixels(kDefaultMaxImagePixels); }
    } restore;
    set_max_image_pixels(kW * kH);
    REQUIRE(decode_image_file(dir.file("ok.png")).sizes() == at::IntArrayRef{ kH, kW, 3 });
    set_max_image_pixels(kW * kH - 1);
    for (const std::string name : { "ok.png", "ok.jpg" }) {  // JPEG: from stb's header parse, not declared_size
        const std::string message = decode_error(dir.file(name));
        REQUIRE_THAT(message, Contains(dir.file(name)) && Contains("7x5 = 35 pixels is refused") &&
                                  Contains("over the budget of 34 pixels"));
    }

    // Pillow's decompression-bomb threshold by default: just under it opens as far as the pixels.
    set_max_image_pixels(kDefaultMaxImagePixels);
    const auto header_only = [&](const std::string & name, uint32_t w, uint32_t h) {
        write_bytes(dir.file(name), "\x89PNG\r\n\x1a\n" + ihdr(w, h, 8, 2) + chunk("IEND", ""));
        return dir.file(name);
    };
    REQUIRE_THAT(decode_error(header_only("bomb.png", 13378, 13377)), Contains("178957506 pixels is refused"));
    REQUIRE_THAT(decode_error(header_only("under.png", 13377, 13377)), Contains("corrupt"));
    REQUIRE_THAT(error_of([] { set_max_image_pixels(0); }), Contains("at least 1"));
}
