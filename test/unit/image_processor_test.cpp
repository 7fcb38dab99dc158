// preprocessor_config.json as transformers reads it (defaults, legacy keys, refusals) and the
// crop / rescale / normalize arithmetic of BeitImageProcessor.
#include "core/error.h"
#include "support/error_of.h"
#include "support/temp_dir.h"
#include "vision/image_processor.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;

namespace {

ImageProcessorConfig config_from(const TempDir & dir, const std::string & json) {
    write_bytes(dir.file("preprocessor_config.json"), json);
    return read_image_processor_config(dir.file("preprocessor_config.json"));
}

// One step only: crop (and rescale/normalize as asked), no resize.
ImageProcessorConfig crop_only(int64_t h, int64_t w) {
    ImageProcessorConfig c;
    c.do_resize   = false;
    c.crop_height = h;
    c.crop_width  = w;
    return c;
}

}  // namespace

TEST_CASE("Image processor config: transformers' defaults, legacy keys and types", "[unit][vision]") {
    TempDir                    dir;
    const ImageProcessorConfig beit = config_from(dir, "{}");
    CHECK(beit.source == dir.file("preprocessor_config.json"));
    CHECK((beit.do_resize && beit.resize_height == 256 && beit.resize_width == 256));
    CHECK(beit.resample == Resample::bicubic);
    CHECK((beit.do_center_crop && beit.crop_height == 224 && beit.crop_width == 224));
    CHECK((beit.do_rescale && beit.rescale_factor == 1.0 / 255.0));
    CHECK((beit.do_normalize && beit.image_mean[1] == 0.5 && beit.image_std[2] == 0.5));

    // microsoft/beit-base-patch16-224 as published: the feature-extractor key and integer sizes.
    const ImageProcessorConfig hub = config_from(dir, R"({"feature_extractor_type": "BeitFeatureExtractor", "size": 224,
        "crop_size": 224, "do_center_crop": false, "resample": 2, "image_mean": 0.25, "image_std": [0.1, 0.2, 0.3]})");
    CHECK((hub.resize_height == 224 && hub.resize_width == 224 && !hub.do_center_crop));
    CHECK(hub.resample == Resample::bilinear);
    CHECK((hub.image_mean[0] == 0.25 && hub.image_mean[2] == 0.25 && hub.image_std[2] == 0.3));

    // ViTImageProcessor: 224x224 bilinear and no crop step at all.
    const ImageProcessorConfig vit = config_from(dir, R"({"image_processor_type": "ViTImageProcessor", "do_center_crop": true,
        "size": [20, 30]})");
    CHECK((vit.resize_height == 20 && vit.resize_width == 30 && !vit.do_center_crop));
    CHECK(vit.resample == Resample::bilinear);
    CHECK(config_from(dir, R"({"image_processor_type": "ViTImageProcessor"})").resize_height == 224);
}

TEST_CASE("Image processor config: one line naming the file for what it cannot follow", "[unit][vision]") {
    TempDir           dir;
    const std::string path  = dir.file("preprocessor_config.json");
    const auto        error = [&](const std::string & json) {
        const std::string what = error_of([&] { config_from(dir, json); });
        REQUIRE_THAT(what, Contains(path));
        REQUIRE(what.find('\n') == std::string::npos);
        return what;
    };
    REQUIRE_THAT(error(R"({"image_processor_type": "CLIPImageProcessor"})"), Contains("'CLIPImageProcessor' is not supported"));
    REQUIRE_THAT(error(R"({"size": {"shortest_edge": 224}})"), Contains("'size'"));
    REQUIRE_THAT(error(R"({"crop_size": 0})"), Contains("'crop_size'"));
    REQUIRE_THAT(error(R"({"resample": 9})"), Contains("resample 9"));
    REQUIRE_THAT(error(R"({"do_resize": "yes"})"), Contains("'do_resize'"));
    REQUIRE_THAT(error(R"({"image_std": [0.5, 0.0, 0.5]})"), Contains("'image_std'"));
    REQUIRE_THAT(error(R"({"image_mean": [0.5, 0.5]})"), Contains("'image_mean'"));
    REQUIRE_THAT(error("[1, 2]"), Contains("JSON object"));
    REQUIRE_THAT(error("{"), Contains("malformed JSON"));
}

TEST_CASE("Image processor: center crop offsets, zero padding, rescale and normalize as transformers", "[unit][vision]") {
    const at::Tensor image = at::arange(4 * 5 * 3, at::kInt).to(at::kByte).view({ 4, 5, 3 });  // [H, W, 3]

    // Smaller crop: it starts at (H - h) // 2, (W - w) // 2.
    ImageProcessorConfig crop = crop_only(2, 2);
    crop.do_rescale           = false;
    crop.do_normalize         = false;
    const at::Tensor small    = preprocess_image(crop, image);  // [3, 2, 2]
    REQUIRE(at::equal(small, image.slice(0, 1, 3).slice(1, 1, 3).permute({ 2, 0, 1 }).to(at::kFloat)));

    // Larger crop: the image lands ceil((h - H) / 2), ceil((w - W) / 2) from the corner, zeros around.
    const at::Tensor large = preprocess_image(crop_only(7, 6), image);  // [3, 7, 6], zeros normalize to -1
    REQUIRE(large.sizes() == at::IntArrayRef({ 3, 7, 6 }));
    REQUIRE(at::equal(large.slice(1, 0, 2), at::full({ 3, 2, 6 }, -1.0f)));
    REQUIRE(at::equal(large.slice(1, 6, 7), at::full({ 3, 1, 6 }, -1.0f)));
    REQUIRE(at::equal(large.slice(2, 0, 1), at::full({ 3, 7, 1 }, -1.0f)));
    const at::Tensor inside = large.slice(1, 2, 6).slice(2, 1, 6);  // [3, 4, 5]
    // rescale in float64 then float32, normalize in float32: (x - 0.5f) / 0.5f.
    const at::Tensor rescaled = (image.to(at::kDouble) * (1.0 / 255.0)).to(at::kFloat);
    REQUIRE(at::equal(inside, ((rescaled - 0.5f) / 0.5f).permute({ 2, 0, 1 })));

    // Mixed: taller crop, narrower crop.
    crop.crop_height = 6;
    crop.crop_width  = 3;
    const at::Tensor mixed = preprocess_image(crop, image);  // [3, 6, 3]
    REQUIRE(at::equal(mixed.slice(1, 1, 5), image.slice(1, 1, 4).permute({ 2, 0, 1 }).to(at::kFloat)));
    REQUIRE(mixed.slice(1, 0, 1).abs().sum().item<float>() == 0.0f);
    REQUIRE(mixed.slice(1, 5, 6).abs().sum().item<float>() == 0.0f);
}

TEST_CASE("Image processor batches: [N, 3, H, W], one size or a clear error", "[unit][vision]") {
    ImageProcessorConfig config;
    config.resize_height         = 6;
    config.resize_width          = 8;
    config.crop_height           = 4;
    config.crop_width            = 4;
    const at::Tensor a           = at::full({ 5, 9, 3 }, 255, at::kByte);
    const at::Tensor b           = at::zeros({ 12, 3, 3 }, at::kByte);
    const at::Tensor batch       = preprocess_images(config, { a, b });
    REQUIRE(batch.sizes() == at::IntArrayRef({ 2, 3, 4, 4 }));
    REQUIRE(batch.scalar_type() == at::kFloat);
    REQUIRE(at::equal(batch[0], at::ones({ 3, 4, 4 })));
    REQUIRE(at::equal(batch[1], at::full({ 3, 4, 4 }, -1.0f)));

    config.source         = "cfg.json";
    config.do_resize      = false;
    config.do_center_crop = false;
    REQUIRE_THAT(error_of([&] { preprocess_images(config, { a, b }); }), Contains("cfg.json") && Contains("image 1"));
    REQUIRE_THAT(error_of([&] { preprocess_images(config, {}); }), Contains("no images"));
    REQUIRE_THAT(error_of([&] { preprocess_image(config, at::zeros({ 2, 2, 4 }, at::kByte)); }), Contains("[H, W, 3] uint8"));
}
