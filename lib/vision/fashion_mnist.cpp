#include "vision/fashion_mnist.h"

#include "core/error.h"
#include "vision/idx_file.h"

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {
namespace {

// dir/name.gz as Debian ships it, else dir/name uncompressed; errors name the .gz.
std::string idx_path(const std::string & dir, const std::string & name) {
    const fs::path plain = fs::path(dir) / name;
    return fs::exists(plain) && !fs::exists(plain.string() + ".gz") ? plain.string() : plain.string() + ".gz";
}

// A class given by short name or label index -> its label.
int64_t class_label(const std::string & name, const std::string & dir) {
    const auto & names = fashion_mnist_classes();
    const auto   it    = std::find(names.begin(), names.end(), name);
    if (it != names.end()) {
        return it - names.begin();
    }
    if (name.size() == 1 && name[0] >= '0' && name[0] <= '9') {
        return name[0] - '0';
    }
    std::string known;
    for (const auto & n : names) {
        known += (known.empty() ? "" : ",") + n;
    }
    fail(dir, "no Fashion-MNIST class '" + name + "' (known: " + known + ", or 0-9)");
}

}  // namespace

const std::vector<std::string> & fashion_mnist_classes() {
    static const std::vector<std::string> names = { "tshirt", "trouser", "pullover", "dress", "coat",
                                                    "sandal", "shirt",   "sneaker",  "bag",   "boot" };
    return names;
}

LabeledImages read_fashion_mnist(const std::string & dir, const ImageSourceOptions & options) {
    const int64_t n_classes = static_cast<int64_t>(fashion_mnist_classes().size());
    // wanted[source label]: the label in the output, or -1 to leave the class out.
    std::vector<int64_t> wanted(static_cast<size_t>(n_classes), -1);
    LabeledImages        out;
    for (const auto & name : options.classes) {
        const int64_t label = class_label(name, dir);
        if (wanted[static_cast<size_t>(label)] >= 0) {
            fail(dir, "class '" + name + "' is selected twice");
        }
        wanted[static_cast<size_t>(label)] = static_cast<int64_t>(out.class_names.size());
        out.class_names.push_back(fashion_mnist_classes()[static_cast<size_t>(label)]);
    }
    if (options.classes.empty()) {
        out.class_names = fashion_mnist_classes();
        for (int64_t c = 0; c < n_classes; ++c) {
            wanted[static_cast<size_t>(c)] = c;
        }
    }
    std::vector<int64_t> seen(static_cast<size_t>(n_classes), 0), taken(static_cast<size_t>(n_classes), 0);
    for (const std::string prefix : { "train", "t10k" }) {
        const std::string images_path = idx_path(dir, prefix + "-images-idx3-ubyte");
        const std::string labels_path = idx_path(dir, prefix + "-labels-idx1-ubyte");
        const at::Tensor  images      = read_idx_u8(images_path, 3);  // [N, H, W] uint8
        const at::Tensor  labels      = read_idx_u8(labels_path, 1);  // [N] uint8
        if (labels.size(0) != images.size(0)) {
            fail(labels_path, std::to_string(labels.size(0)) + " labels for the " + std::to_string(images.size(0)) +
                                  " images of " + images_path);
        }
        const uint8_t * label_data = labels.data_ptr<uint8_t>();
        for (int64_t i = 0; i < labels.size(0); ++i) {
            if (label_data[i] >= n_classes) {
                fail(labels_path, "label " + std::to_string(label_data[i]) + " at index " + std::to_string(i) +
                                      " is not below " + std::to_string(n_classes));
            }
        }
        for (int64_t i = 0; i < labels.size(0); ++i) {
            const int64_t source = label_data[i];
            const int64_t label  = wanted[static_cast<size_t>(source)];
            if (label < 0 || seen[static_cast<size_t>(source)]++ < options.skip_per_class ||
                (options.per_class > 0 && taken[static_cast<size_t>(source)] >= options.per_class)) {
                continue;
            }
            ++taken[static_cast<size_t>(source)];
            // [H, W] gray -> [H, W, 3]
            const at::Tensor rgb = images[i].unsqueeze(-1).expand({ -1, -1, 3 }).contiguous();
            out.add(rgb, label, options.image_size, images_path + "[" + std::to_string(i) + "]");
        }
    }
    return out;
}

}  // namespace cgm
