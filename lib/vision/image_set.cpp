#include "vision/image_set.h"

#include "core/error.h"
#include "vision/image_dataset.h"

#include <ATen/ATen.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

std::string ImageSet::class_name(const std::string & domain, int64_t label) const {
    const auto & names = class_names.at(domain);
    return label >= 0 && label < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(label)]
                                                                    : "class " + std::to_string(label);
}

bool is_image_split_path(const std::string & path) {
    return fs::path(path).extension() == ".safetensors";
}

ImageSet read_image_sets(const std::vector<std::string> & paths) {
    ImageSet                set;
    std::vector<at::Tensor> images, labels;
    for (const auto & path : paths) {
        const fs::path    file(path);
        const std::string dir    = file.parent_path().empty() ? "." : file.parent_path().string();
        const std::string domain = fs::absolute(dir).lexically_normal().filename().string();
        ImageSplit        split  = read_image_split(dir, file.stem().string());
        if (!images.empty() && split.images.sizes().slice(1) != images.front().sizes().slice(1)) {
            fail(path, "images of " + c10::str(split.images.sizes().slice(1)) + " where the first set has " +
                           c10::str(images.front().sizes().slice(1)) + " (prepare both with the same --image-size)");
        }
        const auto known = set.class_names.find(domain);
        if (known != set.class_names.end() && known->second != split.class_names) {
            fail(path, "another dataset named '" + domain + "' with other classes was given before");
        }
        set.class_names[domain] = split.class_names;
        set.domains.insert(set.domains.end(), static_cast<size_t>(split.labels.size(0)), domain);
        images.push_back(split.images);
        labels.push_back(split.labels);
    }
    if (images.empty()) {
        throw Error("no image sets given");
    }
    set.images = at::cat(images);  // [N, H, W, 3]
    set.labels = at::cat(labels);  // [N]
    return set;
}

}  // namespace cgm
