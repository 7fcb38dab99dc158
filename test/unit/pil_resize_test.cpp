// PIL resize: tiny cases worked out by hand, and outputs Pillow computed for small images (each
// filter, shrinking and enlarging, both pass orders).
#include "core/error.h"
#include "support/error_of.h"
#include "vision/pil_resize.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;

namespace {

at::Tensor bytes(const std::vector<int> & values, int64_t h, int64_t w, int64_t c = 3) {
    return at::tensor(values, at::kInt).to(at::kByte).view({ h, w, c });
}

// The test image the Pillow outputs below were computed from: (37 x + 91 y + 53 c) mod 256.
at::Tensor pattern(int64_t h, int64_t w) {
    at::Tensor img = at::empty({ h, w, 3 }, at::kByte);
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            for (int64_t c = 0; c < 3; ++c) {
                img[y][x][c] = (37 * x + 91 * y + 53 * c) % 256;
            }
        }
    }
    return img;
}

void require_bytes(const at::Tensor & actual, const std::vector<int> & expected, int64_t h, int64_t w) {
    REQUIRE(actual.sizes() == at::IntArrayRef({ h, w, 3 }));
    REQUIRE(actual.scalar_type() == at::kByte);
    INFO("actual " << actual.flatten().to(at::kInt));
    REQUIRE(at::equal(actual, bytes(expected, h, w)));
}

}  // namespace

TEST_CASE("PIL resize by hand: 2x1 -> 1x1 averages (rounding half up), NEAREST picks Pillow's pixel", "[unit][vision]") {
    const at::Tensor two = bytes({ 10, 20, 0, 21, 20, 255 }, 1, 2);
    // Bilinear over two pixels: weights 1/2 each in 22-bit fixed point, rounded half up.
    require_bytes(pil_resize(two, 1, 1, Resample::bilinear), { 16, 20, 128 }, 1, 1);
    require_bytes(pil_resize(two, 1, 1, Resample::box), { 16, 20, 128 }, 1, 1);
    // NEAREST samples at (i + 0.5) * in / out: 1.0 -> the second pixel; 4 -> 2 takes pixels 1 and 3.
    require_bytes(pil_resize(two, 1, 1, Resample::nearest), { 21, 20, 255 }, 1, 1);
    const at::Tensor four = bytes({ 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4 }, 1, 4);
    require_bytes(pil_resize(four, 1, 2, Resample::nearest), { 2, 2, 2, 4, 4, 4 }, 1, 2);
    require_bytes(pil_resize(four.view({ 4, 1, 3 }), 2, 1, Resample::nearest).view({ 1, 2, 3 }), { 2, 2, 2, 4, 4, 4 }, 1, 2);
}

TEST_CASE("PIL resize to the same size is the identity for every filter", "[unit][vision]") {
    const at::Tensor img = pattern(5, 7);
    for (int code = 0; code <= 5; ++code) {
        INFO("filter " << code);
        REQUIRE(at::equal(pil_resize(img, 5, 7, resample_from_pil(code, "test")), img));
    }
}

TEST_CASE("PIL resize matches Pillow's bytes for each filter", "[unit][vision]") {
    // Image.fromarray(pattern(h, w)).resize((out_w, out_h), filter): the same in Pillow 12.1 and 13.0.
    require_bytes(pil_resize(pattern(3, 4), 2, 2, Resample::bicubic),
                  { 51, 109, 158, 127, 181, 142, 162, 138, 107, 90, 124, 91 }, 2, 2);
    require_bytes(pil_resize(pattern(2, 2), 3, 5, Resample::bicubic),
                  { 0,   43,  96,  0,   49,  102, 13,  66,  119, 29,  82,  135, 35,  88,  141,
                    44,  95,  148, 48,  101, 154, 65,  118, 171, 81,  134, 187, 87,  140, 193,
                    93,  146, 199, 99,  152, 205, 116, 169, 222, 132, 185, 238, 138, 191, 244 },
                  3, 5);
    require_bytes(pil_resize(pattern(4, 4), 4, 1, Resample::nearest),
                  { 74, 127, 180, 165, 218, 15, 0, 53, 106, 91, 144, 197 }, 4, 1);
    require_bytes(pil_resize(pattern(3, 7), 2, 3, Resample::box),
                  { 65, 118, 171, 157, 167, 135, 122, 111, 100, 201, 126, 51, 37, 90, 143, 130, 183, 236 }, 2, 3);
    require_bytes(pil_resize(pattern(3, 7), 5, 2, Resample::hamming),
                  { 51,  104, 157, 171, 170, 133, 76, 128, 151, 156, 149, 127, 142, 191, 136,
                    118, 95,  112, 127, 114, 98,  103, 135, 178, 121, 84,  83,  97,  150, 203 },
                  5, 2);
}

TEST_CASE("PIL resize follows each Pillow release's pass order", "[unit][vision]") {
    // Both sides change: Pillow up to 12.1 runs the horizontal pass first; 13.0 starts with the
    // vertical one when the height loses more than twice as many pixels as the width.
    require_bytes(pil_resize(pattern(5, 3), 2, 4, Resample::lanczos),
                  { 75,  134, 115, 103, 109, 148, 109, 115, 139, 88,  143, 99,
                    92,  151, 132, 120, 126, 162, 126, 132, 152, 105, 160, 104 },
                  2, 4);
    require_bytes(pil_resize(pattern(5, 3), 2, 4, Resample::lanczos, PillowRelease::from_13),
                  { 75,  134, 115, 104, 109, 148, 109, 114, 139, 84,  143, 98,
                    92,  151, 132, 121, 126, 167, 126, 131, 152, 101, 160, 104 },
                  2, 4);
    const std::vector<int> bilinear_12_1 = { 96,  125, 138, 105, 137, 126, 137, 158, 136, 129, 146, 127,
                                             122, 143, 143, 117, 132, 138, 113, 119, 134, 108, 144, 129,
                                             148, 125, 122, 136, 146, 114, 125, 125, 146, 113, 126, 155 };
    require_bytes(pil_resize(pattern(9, 6), 3, 4, Resample::bilinear), bilinear_12_1, 3, 4);
    require_bytes(pil_resize(pattern(9, 6), 3, 4, Resample::bilinear, PillowRelease::from_12_2), bilinear_12_1, 3, 4);
    require_bytes(pil_resize(pattern(9, 6), 3, 4, Resample::bilinear, PillowRelease::from_13),
                  { 96,  125, 138, 105, 137, 126, 137, 158, 137, 129, 146, 127, 122, 143, 143, 117, 132, 137,
                    114, 119, 134, 108, 144, 129, 148, 125, 122, 136, 146, 114, 125, 125, 146, 113, 126, 155 },
                  3, 4);
    // Pillow 12.2 and 12.3 start with the vertical pass only for images over 100 times taller than wide.
    require_bytes(pil_resize(pattern(203, 2), 2, 3, Resample::lanczos),
                  { 126, 125, 126, 128, 128, 128, 128, 130, 130, 126, 127, 123, 129, 128, 127, 130, 128, 130 }, 2, 3);
    require_bytes(pil_resize(pattern(203, 2), 2, 3, Resample::lanczos, PillowRelease::from_12_2),
                  { 128, 126, 128, 128, 127, 128, 127, 128, 128, 128, 129, 125, 128, 128, 127, 128, 126, 128 }, 2, 3);
}

TEST_CASE("PIL resize refuses unknown filters and malformed images", "[unit][vision]") {
    REQUIRE_THAT(error_of([] { resample_from_pil(6, "cfg.json"); }), Contains("cfg.json") && Contains("resample 6"));
    REQUIRE_THAT(error_of([] { resample_from_pil(-1, "cfg.json"); }), Contains("not a PIL filter"));
    REQUIRE_THAT(error_of([] { pil_resize(at::zeros({ 2, 2, 3 }), 1, 1, Resample::bilinear); }), Contains("uint8"));
    REQUIRE_THAT(error_of([] { pil_resize(pattern(2, 2), 0, 1, Resample::bilinear); }), Contains("out of range"));
}
