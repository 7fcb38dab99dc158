// Images to BEiT pixel values against transformers' BeitImageProcessor: every fixture of kind
// "beit_image_processor" (its images decoded exactly as PIL decodes them, and each processor config
// it lists applied to all of them), then the fixture's BEiT model on those pixel values.
#include "models/beit.h"
#include "support/fixtures.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;

TEST_CASE("BEiT preprocessing matches transformers: decoded images and pixel values", "[parity][vision]") {
    for (const Fixture & f : fixtures_or_skip("beit_image_processor", "BEiT preprocessing parity")) {
        const auto & images = f.manifest.at("images");
        REQUIRE(!images.empty());
        std::vector<at::Tensor> decoded;
        for (size_t i = 0; i < images.size(); ++i) {
            const std::string file = images[i].get<std::string>();
            INFO(f.name << ": " << file);
            decoded.push_back(decode_image_file(f.path(file)));
            const at::Tensor expected = f.get("image_uint8." + std::to_string(i));  // [H, W, 3] uint8
            REQUIRE(decoded.back().sizes() == expected.sizes());
            REQUIRE(at::equal(decoded.back(), expected));
        }
        const auto & processors = f.manifest.at("processors");
        REQUIRE(!processors.empty());
        for (const auto & [name, config] : processors.items()) {
            const ImageProcessorConfig processor = read_image_processor_config(f.path(config.get<std::string>()));
            const at::Tensor           expected  = f.get("pixel_values." + name);  // [N, 3, H, W]
            CGM_REQUIRE_CLOSE(f, "pixel_values." + name, preprocess_images(processor, decoded), expected);
            for (size_t i = 0; i < decoded.size(); ++i) {  // one at a time: the same values
                CGM_REQUIRE_CLOSE(f, "image " + std::to_string(i) + " alone with " + name,
                                  preprocess_image(processor, decoded[i]), expected[static_cast<int64_t>(i)]);
            }
        }
    }
}

TEST_CASE("BEiT on preprocessed images matches transformers' logits", "[parity][vision][beit]") {
    for (Fixture f : fixtures_of_kind("beit_image_processor")) {
        if (!f.manifest.contains("model_dir")) {
            continue;
        }
        const BeitModel model = BeitModel::load(f.path(f.manifest["model_dir"]), at::kFloat, test_device());
        std::vector<at::Tensor> decoded;
        for (const auto & file : f.manifest.at("images")) {
            decoded.push_back(decode_image_file(f.path(file.get<std::string>())));
        }
        f.atol = std::max(f.atol, 1e-4);  // pixel values are exact; logits carry the model's float32 rounding
        f.rtol = std::max(f.rtol, 1e-4);
        for (const auto & [name, config] : f.manifest.at("processors").items()) {
            const at::Tensor pixels = preprocess_images(read_image_processor_config(f.path(config.get<std::string>())), decoded);
            CGM_REQUIRE_CLOSE(f, "logits." + name, model.forward(pixels.to(test_device())).logits, f.get("logits." + name));
        }
    }
}
