#include "vision/image_dataset.h"

#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {
namespace {

std::vector<std::string> class_names(const std::string & path) {
    const nlohmann::json info    = read_json_file(path);
    const auto           classes = info.is_object() ? info.find("classes") : info.end();
    if (classes == info.end() || !classes->is_array() || classes->empty()) {
        fail(path, "'classes' is not a non-empty list of class names");
    }
    std::vector<std::string> names;
    for (const auto & name : *classes) {
        if (!name.is_string()) {
            fail(path, "'classes' holds " + name.dump() + ", not a class name");
        }
        names.push_back(name.get<std::string>());
    }
    return names;
}

const SafetensorsEntry & checked_entry(const SafetensorsReader & file, const char * name, c10::ScalarType dtype,
                                       const char * shape) {
    if (!file.contains(name)) {
        fail(file.path(), std::string("has no tensor '") + name + "'");
    }
    const SafetensorsEntry & e = file.entry(name);
    if (e.dtype != dtype) {
        fail(file.path(), std::string("tensor '") + name + "' is " + safetensors_dtype_name(e.dtype) + ", expected " +
                              safetensors_dtype_name(dtype) + " " + shape);
    }
    return e;
}

}  // namespace

void write_image_split(const std::string & path, const at::Tensor & images, const at::Tensor & labels) {
    write_safetensors(path, { { "images", images }, { "labels", labels } });
}

ImageSplit read_image_split(const std::string & dir, const std::string & split) {
    ImageSplit out;
    out.class_names = class_names((fs::path(dir) / "dataset.json").string());
    const SafetensorsReader  file((fs::path(dir) / (split + ".safetensors")).string());
    const SafetensorsEntry & images = checked_entry(file, "images", at::kByte, "[N, H, W, 3]");
    const SafetensorsEntry & labels = checked_entry(file, "labels", at::kLong, "[N]");
    if (images.shape.size() != 4 || images.shape[3] != 3) {
        fail(file.path(),
             "tensor 'images' has shape " + c10::str(c10::IntArrayRef(images.shape)) + ", expected [N, H, W, 3]");
    }
    if (labels.shape.size() != 1 || labels.shape[0] != images.shape[0]) {
        fail(file.path(), "tensor 'labels' has shape " + c10::str(c10::IntArrayRef(labels.shape)) + ", expected [" +
                              std::to_string(images.shape[0]) + "] (one per image)");
    }
    out.images               = file.tensor("images");  // [N, H, W, 3] uint8
    out.labels               = file.tensor("labels");  // [N] int64
    const int64_t * label    = out.labels.data_ptr<int64_t>();
    const auto      n_labels = static_cast<int64_t>(out.class_names.size());
    for (int64_t i = 0; i < out.labels.size(0); ++i) {
        if (label[i] < 0 || label[i] >= n_labels) {
            fail(file.path(), "label " + std::to_string(label[i]) + " at index " + std::to_string(i) +
                                  " is outside the " + std::to_string(n_labels) + " classes of dataset.json");
        }
    }
    return out;
}

}  // namespace cgm
