#include "models/beit_base.h"

#include <ATen/ATen.h>

#include <filesystem>

namespace cgm {

BeitBase load_beit_base(const std::string & dir, c10::ScalarType dtype, c10::Device device) {
    BeitModel            model = BeitModel::load(dir, dtype, device);
    const std::string    path  = (std::filesystem::path(dir) / "preprocessor_config.json").string();
    ImageProcessorConfig processor;
    if (std::filesystem::exists(path)) {
        processor = read_image_processor_config(path);
    } else {
        processor.resize_height = processor.resize_width = model.config().image_size;
        processor.do_center_crop = false;
    }
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
