// Pillow's resampling (src/libImaging/Resample.c, the nearest-neighbour affine scaling of
// Geometry.c and Image.resize in Image.py, HPND licence), rewritten for HWC uint8 tensors: the same
// filters, supports widened by the scale factor when shrinking (antialiasing), coefficients
// normalised in double and rounded to 22-bit fixed point, a horizontal and a vertical pass each
// rounded to 8 bits (skipped when that side keeps its size), and the same accumulated-double pixel
// mapping for NEAREST.
#include "vision/pil_resize.h"

#include "core/error.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace cgm {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Keeps every index and fixed-point sum of the passes far inside int, as Pillow's are.
constexpr int64_t kMaxSide = int64_t{ 1 } << 16;

// Pillow's kernels, written as it writes them: the rounding of each expression is part of the result.
double box_kernel(double x) {
    return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

double bilinear_kernel(double x) {
    x = std::abs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_kernel(double x) {
    x = std::abs(x);
    if (x == 0.0) {
        return 1.0;
    }
    if (x >= 1.0) {
        return 0.0;
    }
    x = x * kPi;
    return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as in Pillow
}

double bicubic_kernel(double x) {
    constexpr double a = -0.5;
    x                  = std::abs(x);
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
        return (((x - 5) * x + 8) * x - 4) * a;
    }
    return 0.0;
}

double sinc(double x) {
    if (x == 0.0) {
        return 1.0;
    }
    x = x * kPi;
    return std::sin(x) / x;
}

double lanczos_kernel(double x) {
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

struct Filter {
    double (*kernel)(double);
    double support;
};

Filter filter_of(Resample r) {
    switch (r) {
        case Resample::box: return { box_kernel, 0.5 };
        case Resample::bilinear: return { bilinear_kernel, 1.0 };
        case Resample::hamming: return { hamming_kernel, 1.0 };
        case Resample::bicubic: return { bicubic_kernel, 2.0 };
        case Resample::lanczos: return { lanczos_kernel, 3.0 };
        case Resample::nearest: break;
    }
    fail("pil_resize", "NEAREST has no convolution kernel");
}

// 8 bits of result, 2 bits of headroom for kernels with negative lobes.
constexpr int kPrecisionBits = 32 - 8 - 2;

uint8_t clip8(int acc) {
    return acc < 0 ? 0 : static_cast<uint8_t>(std::min(acc >> kPrecisionBits, 255));
}

// One axis of a resize: output pixel i reads inputs first[i] .. first[i] + count[i] - 1 with
// weights weight[i * ksize + j].
struct Taps {
    int                  ksize = 0;
    std::vector<int>     first;
    std::vector<int>     count;
    std::vector<int32_t> weight;
};

Taps make_taps(int in_size, int out_size, const Filter & f) {
    const double scale       = static_cast<double>(in_size) / out_size;
    const double filterscale = std::max(scale, 1.0);  // widen the filter only when shrinking
    const double support     = f.support * filterscale;
    const double inv_scale   = 1.0 / filterscale;

    Taps t;
    t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.first.resize(static_cast<size_t>(out_size));
    t.count.resize(static_cast<size_t>(out_size));
    t.weight.assign(static_cast<size_t>(out_size) * static_cast<size_t>(t.ksize), 0);
    std::vector<double> w(static_cast<size_t>(t.ksize));
    for (int i = 0; i < out_size; ++i) {
        const double center = (i + 0.5) * scale;
        const int    lo     = std::max(static_cast<int>(center - support + 0.5), 0);
        const int    n      = std::min(static_cast<int>(center + support + 0.5), in_size) - lo;
        double       sum    = 0.0;
        for (int j = 0; j < n; ++j) {
            w[static_cast<size_t>(j)] = f.kernel((j + lo - center + 0.5) * inv_scale);
            sum += w[static_cast<size_t>(j)];
        }
        int32_t * k = &t.weight[static_cast<size_t>(i) * static_cast<size_t>(t.ksize)];
        for (int j = 0; j < n; ++j) {
            const double v = sum != 0.0 ? w[static_cast<size_t>(j)] / sum : w[static_cast<size_t>(j)];
            k[j]           = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
        }
        t.first[static_cast<size_t>(i)] = lo;
        t.count[static_cast<size_t>(i)] = n;
    }
    return t;
}

// src: [rows, in_w, C] -> dst: [row_end - row_begin, out_w, C] from source rows row_begin..row_end-1.
void horizontal_pass(const uint8_t * src, int64_t in_w, int64_t c, int64_t row_begin, int64_t row_end, const Taps & t,
                     uint8_t * dst) {
    const auto out_w = static_cast<int64_t>(t.first.size());
    at::parallel_for(row_begin, row_end, 16, [&](int64_t begin, int64_t end) {
        for (int64_t y = begin; y < end; ++y) {
            const uint8_t * in  = src + y * in_w * c;
            uint8_t *       out = dst + (y - row_begin) * out_w * c;
            for (int64_t x = 0; x < out_w; ++x) {
                const int32_t * k     = &t.weight[static_cast<size_t>(x * t.ksize)];
                const uint8_t * first = in + t.first[static_cast<size_t>(x)] * c;
                const int       n     = t.count[static_cast<size_t>(x)];
                for (int64_t ch = 0; ch < c; ++ch) {
                    int acc = 1 << (kPrecisionBits - 1);  // rounds the final shift to nearest
                    for (int j = 0; j < n; ++j) {
                        acc += first[j * c + ch] * k[j];
                    }
                    out[x * c + ch] = clip8(acc);
                }
            }
        }
    });
}

// src: [rows, row_len / C, C] -> dst: [out_h, row_len / C, C]; taps index source rows from row_offset.
void vertical_pass(const uint8_t * src, int64_t row_len, int row_offset, const Taps & t, uint8_t * dst) {
    const auto out_h = static_cast<int64_t>(t.first.size());
    at::parallel_for(0, out_h, 16, [&](int64_t begin, int64_t end) {
        for (int64_t y = begin; y < end; ++y) {
            const int32_t * k     = &t.weight[static_cast<size_t>(y * t.ksize)];
            const uint8_t * first = src + (t.first[static_cast<size_t>(y)] - row_offset) * row_len;
            const int       n     = t.count[static_cast<size_t>(y)];
            uint8_t *       out   = dst + y * row_len;
            for (int64_t i = 0; i < row_len; ++i) {
                int acc = 1 << (kPrecisionBits - 1);
                for (int j = 0; j < n; ++j) {
                    acc += first[j * row_len + i] * k[j];
                }
                out[i] = clip8(acc);
            }
        }
    });
}

// Pillow's NEAREST: source index of each output pixel by accumulating the step in double from
// half a step; -1 (a zero pixel) where rounding walks off the image.
std::vector<int64_t> nearest_index(int64_t in_size, int64_t out_size) {
    const double         step = static_cast<double>(in_size) / static_cast<double>(out_size);
    double               pos  = step * 0.5;
    std::vector<int64_t> index(static_cast<size_t>(out_size));
    for (auto & i : index) {
        const auto p = static_cast<int64_t>(pos);
        i            = p < in_size ? p : -1;
        pos += step;
    }
    return index;
}

at::Tensor resize_nearest(const at::Tensor & src, int64_t height, int64_t width) {
    const int64_t in_w = src.size(1), c = src.size(2);
    const auto    ys = nearest_index(src.size(0), height), xs = nearest_index(in_w, width);
    at::Tensor    out = at::empty({ height, width, c }, at::kByte);  // [height, width, C]
    const uint8_t * in  = src.data_ptr<uint8_t>();
    uint8_t *       dst = out.data_ptr<uint8_t>();
    for (int64_t y = 0; y < height; ++y) {
        for (int64_t x = 0; x < width; ++x) {
            uint8_t * o = dst + (y * width + x) * c;
            if (ys[static_cast<size_t>(y)] < 0 || xs[static_cast<size_t>(x)] < 0) {
                std::fill_n(o, c, uint8_t{ 0 });
            } else {
                std::copy_n(in + (ys[static_cast<size_t>(y)] * in_w + xs[static_cast<size_t>(x)]) * c, c, o);
            }
        }
    }
    return out;
}

// One convolution pass along width (axis 1) or height (axis 0) of a [H, W, C] image.
at::Tensor resize_width(const at::Tensor & src, int64_t width, const Filter & f) {
    const int64_t h = src.size(0), c = src.size(2);
    const Taps    t = make_taps(static_cast<int>(src.size(1)), static_cast<int>(width), f);
    at::Tensor    out = at::empty({ h, width, c }, at::kByte);
    horizontal_pass(src.data_ptr<uint8_t>(), src.size(1), c, 0, h, t, out.data_ptr<uint8_t>());
    return out;
}

at::Tensor resize_height(const at::Tensor & src, int64_t height, const Filter & f) {
    const int64_t w = src.size(1), c = src.size(2);
    const Taps    t = make_taps(static_cast<int>(src.size(0)), static_cast<int>(height), f);
    at::Tensor    out = at::empty({ height, w, c }, at::kByte);
    vertical_pass(src.data_ptr<uint8_t>(), w * c, 0, t, out.data_ptr<uint8_t>());
    return out;
}

// Both passes, horizontal first; the horizontal pass computes only the rows the vertical one reads.
at::Tensor resize_both(const at::Tensor & src, int64_t height, int64_t width, const Filter & f) {
    const int64_t c      = src.size(2);
    const Taps    vert   = make_taps(static_cast<int>(src.size(0)), static_cast<int>(height), f);
    const Taps    horiz  = make_taps(static_cast<int>(src.size(1)), static_cast<int>(width), f);
    const int     row0   = vert.first.front();
    const int     row1   = vert.first.back() + vert.count.back();
    at::Tensor    middle = at::empty({ std::max(row1 - row0, 0), width, c }, at::kByte);  // [rows used, width, C]
    horizontal_pass(src.data_ptr<uint8_t>(), src.size(1), c, row0, row1, horiz, middle.data_ptr<uint8_t>());
    at::Tensor out = at::empty({ height, width, c }, at::kByte);
    vertical_pass(middle.data_ptr<uint8_t>(), width * c, row0, vert, out.data_ptr<uint8_t>());
    return out;
}

}  // namespace

Resample resample_from_pil(int64_t code, const std::string & where) {
    if (code < 0 || code > 5) {
        fail(where, "resample " + std::to_string(code) +
                        " is not a PIL filter (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)");
    }
    return static_cast<Resample>(code);
}

at::Tensor pil_resize(const at::Tensor & image, int64_t height, int64_t width, Resample filter, PillowRelease release) {
    if (image.dim() != 3 || image.scalar_type() != at::kByte || image.size(0) < 1 || image.size(1) < 1 ||
        image.size(2) < 1 || image.size(0) > kMaxSide || image.size(1) > kMaxSide) {
        fail("pil_resize", "the image must be a non-empty [H, W, C] uint8 tensor of at most " + std::to_string(kMaxSide) +
                               " pixels a side");
    }
    if (height < 1 || width < 1 || height > kMaxSide || width > kMaxSide) {
        fail("pil_resize", "output size " + std::to_string(height) + "x" + std::to_string(width) + " is out of range");
    }
    const at::Tensor src = image.cpu().contiguous();  // [H, W, C]
    const int64_t    h = src.size(0), w = src.size(1);
    if (height == h && width == w) {
        return src.clone();
    }
    if (filter == Resample::nearest) {
        return resize_nearest(src, height, width);
    }
    const Filter f = filter_of(filter);
    if (width == w) {
        return resize_height(src, height, f);
    }
    if (height == h) {
        return resize_width(src, width, f);
    }
    const bool vertical_first = (release == PillowRelease::from_12_2 && h > w * 100 && height < h) ||
                                (release == PillowRelease::from_13 && h - height > 0 && h - height > (w - width) * 2);
    return vertical_first ? resize_width(resize_height(src, height, f), width, f) : resize_both(src, height, width, f);
}

}  // namespace cgm
