#include "models/beit_base.h"

#include "models/model_family.h"

#include <ATen/ATen.h>

#include <filesystem>

namespace cgm {

ImageProcessorConfig image_processor_of(const std::string & dir, const BeitConfig & config) {
    const std::string path = (std::filesystem::path(dir) / "preprocessor_config.json").string();
    if (!dir.empty() && std::filesystem::exists(path)) {
        return read_image_processor_config(path);
    }
    ImageProcessorConfig processor;
    processor.resize_height = processor.resize_width = config.image_size;
    processor.do_center_crop                         = false;
    return processor;
}

BeitBase load_beit_base(const std::string & dir, c10::ScalarType dtype, c10::Device device) {
    require_model_folder(dir);
    BeitModel                  model     = BeitModel::load(dir, dtype, device);
    const ImageProcessorConfig processor = image_processor_of(dir, model.config());
    return { dir, std::move(model), processor };
}

at::Tensor pixel_values(const ImageProcessorConfig & processor, const at::Tensor & images, c10::Device device) {
    std::vector<at::Tensor> each;
    for (int64_t i = 0; i < images.size(0); ++i) {
        each.push_back(images[i]);
    }
    return preprocess_images(processor, each).to(device);
}

}  // namespace cgm
