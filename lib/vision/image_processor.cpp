#include "vision/image_processor.h"

#include "core/error.h"
#include "io/json_fields.h"
#include "io/json_file.h"
#include "vision/image_decode.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace cgm {
namespace {

// transformers' get_size_dict(default_to_square=True): an int is a square, a list is
// [height, width]; BEiT and ViT resize and crop only to an explicit height and width.
void read_size(const nlohmann::json & j, const char * key, const std::string & path, int64_t & height, int64_t & width) {
    if (!j.contains(key) || j[key].is_null()) {
        return;
    }
    const nlohmann::json & v        = j[key];
    const auto             positive = [](const nlohmann::json & x) { return x.is_number_integer() && x.get<int64_t>() >= 1; };
    if (positive(v)) {
        height = width = v.get<int64_t>();
    } else if (v.is_array() && v.size() == 2 && positive(v[0]) && positive(v[1])) {
        height = v[0].get<int64_t>();
        width  = v[1].get<int64_t>();
    } else if (v.is_object() && v.contains("height") && v.contains("width") && positive(v["height"]) &&
               positive(v["width"])) {
        height = v["height"].get<int64_t>();
        width  = v["width"].get<int64_t>();
    } else {
        fail(path, std::string("'") + key + "' must be a positive integer or {\"height\": h, \"width\": w}, got " + v.dump());
    }
    // Every image is resized or cropped to this size: the decoder's limits bound it too.
    if (height > kMaxImageSide || width > kMaxImageSide || height * width > max_image_pixels()) {
        fail(path, std::string("'") + key + "' " + std::to_string(height) + "x" + std::to_string(width) +
                       " is refused (limits: " + std::to_string(kMaxImageSide) + " a side, a budget of " +
                       std::to_string(max_image_pixels()) + " pixels)");
    }
}

// A number for every channel or one list of three.
void read_per_channel(const nlohmann::json & j, const char * key, const std::string & path, std::array<double, 3> & out) {
    if (!j.contains(key) || j[key].is_null()) {
        return;
    }
    const nlohmann::json & v = j[key];
    if (v.is_number()) {
        out.fill(v.get<double>());
        return;
    }
    if (v.is_array() && v.size() == 3 && v[0].is_number() && v[1].is_number() && v[2].is_number()) {
        for (size_t c = 0; c < 3; ++c) {
            out[c] = v[c].get<double>();
        }
        return;
    }
    fail(path, std::string("'") + key + "' must be a number or a list of 3 numbers (RGB), got " + v.dump());
}

// transformers' center_crop on HWC: the crop starts at (size - crop) // 2; where the crop is
// larger, the image is centred in zeros with ceil((crop - size) / 2) before it.
at::Tensor center_crop(const at::Tensor & image, int64_t height, int64_t width) {
    struct Span {
        int64_t src, dst, len;
    };
    const auto span = [](int64_t size, int64_t crop) {
        return crop <= size ? Span{ (size - crop) / 2, 0, crop } : Span{ 0, (crop - size + 1) / 2, size };
    };
    const Span rows = span(image.size(0), height), cols = span(image.size(1), width);
    at::Tensor out  = at::zeros({ height, width, image.size(2) }, image.options());  // [h, w, C]
    out.slice(0, rows.dst, rows.dst + rows.len)
        .slice(1, cols.dst, cols.dst + cols.len)
        .copy_(image.slice(0, rows.src, rows.src + rows.len).slice(1, cols.src, cols.src + cols.len));
    return out;
}

// Errors name the config's file, or say what failed when the config was built in code.
std::string where(const ImageProcessorConfig & config) {
    return config.source.empty() ? std::string("image processor") : config.source;
}

}  // namespace

ImageProcessorConfig read_image_processor_config(const std::string & path) {
    const nlohmann::json j = read_json_file(path);
    if (!j.is_object()) {
        fail(path, "a preprocessor config must be a JSON object");
    }
    std::string type = json_string(j, "image_processor_type", path, "");
    if (type.empty()) {
        type = json_string(j, "feature_extractor_type", path, "BeitImageProcessor");
    }
    const bool beit = type == "BeitImageProcessor" || type == "BeitFeatureExtractor";
    const bool vit  = type == "ViTImageProcessor" || type == "ViTFeatureExtractor";
    if (!beit && !vit) {
        fail(path, "image processor type '" + type + "' is not supported (BeitImageProcessor or ViTImageProcessor)");
    }

    ImageProcessorConfig c;
    c.source = path;
    if (vit) {
        c.resize_height = c.resize_width = 224;
        c.resample                       = Resample::bilinear;
    }
    c.do_resize = json_bool(j, "do_resize", path, c.do_resize);
    read_size(j, "size", path, c.resize_height, c.resize_width);
    c.resample = resample_from_pil(json_int(j, "resample", path, false, static_cast<int64_t>(c.resample), 0), path);
    // ViTImageProcessor has no crop step, whatever the file says.
    c.do_center_crop = beit && json_bool(j, "do_center_crop", path, c.do_center_crop);
    read_size(j, "crop_size", path, c.crop_height, c.crop_width);
    c.do_rescale     = json_bool(j, "do_rescale", path, c.do_rescale);
    c.rescale_factor = json_double(j, "rescale_factor", path, c.rescale_factor);
    c.do_normalize   = json_bool(j, "do_normalize", path, c.do_normalize);
    read_per_channel(j, "image_mean", path, c.image_mean);
    read_per_channel(j, "image_std", path, c.image_std);
    if (c.do_normalize) {
        for (double s : c.image_std) {
            if (s == 0.0) {
                fail(path, "'image_std' has a zero: normalizing would divide by it");
            }
        }
    }
    return c;
}

at::Tensor preprocess_image(const ImageProcessorConfig & config, const at::Tensor & image) {
    if (image.dim() != 3 || image.size(2) != 3 || image.scalar_type() != at::kByte) {
        fail(where(config), "images to preprocess must be [H, W, 3] uint8, got " +
                                std::string(c10::toString(image.scalar_type())) + " " + c10::str(image.sizes()));
    }
    at::Tensor x = image.cpu();  // [H, W, 3] uint8
    if (config.do_resize) {
        x = pil_resize(x, config.resize_height, config.resize_width, config.resample, config.pillow);
    }
    if (config.do_center_crop) {
        x = center_crop(x, config.crop_height, config.crop_width);
    }
    // As numpy does it: the rescale in float64 rounded once to float32, the rest in float32.
    at::Tensor v = config.do_rescale ? (x.to(at::kDouble) * config.rescale_factor).to(at::kFloat) : x.to(at::kFloat);
    if (config.do_normalize) {
        const auto per_channel = [](const std::array<double, 3> & a) {  // np.array(a, dtype=float32)
            return at::tensor({ static_cast<float>(a[0]), static_cast<float>(a[1]), static_cast<float>(a[2]) });
        };
        v = (v - per_channel(config.image_mean)) / per_channel(config.image_std);  // [H', W', 3] over [3]
    }
    return v.permute({ 2, 0, 1 }).contiguous();  // [3, H', W']
}

at::Tensor preprocess_images(const ImageProcessorConfig & config, const std::vector<at::Tensor> & images) {
    if (images.empty()) {
        fail(where(config), "no images to preprocess");
    }
    std::vector<at::Tensor> out;
    out.reserve(images.size());
    for (const at::Tensor & image : images) {
        out.push_back(preprocess_image(config, image));
        if (out.back().sizes() != out.front().sizes()) {
            fail(where(config), "image " + std::to_string(out.size() - 1) + " comes out " +
                                    c10::str(out.back().sizes()) + " but image 0 " + c10::str(out.front().sizes()) +
                                    ": a batch needs one size (resize or center crop)");
        }
    }
    return at::stack(out);  // [N, 3, H', W']
}

}  // namespace cgm
