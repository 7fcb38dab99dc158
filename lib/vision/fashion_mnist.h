#pragma once
// Fashion-MNIST as Debian's dataset-fashion-mnist installs it: four IDX files (gzip-compressed, or
// plain under the same names without .gz) of 28x28 grayscale images and labels 0-9.
#include "vision/labeled_images.h"

#include <string>
#include <vector>

namespace cgm {

constexpr const char * kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Short names of the ten classes in label order: tshirt, trouser, ..., boot.
const std::vector<std::string> & fashion_mnist_classes();

// The train pair then the t10k pair of `dir`, each checked (magics, dimensions against the data,
// labels below 10, as many labels as images; an Error naming the file otherwise). options.classes
// are names or label indices, in the order wanted; per_class counts in file order, train first.
// Grayscale becomes RGB (the value in all three channels), as PIL's convert("RGB").
LabeledImages read_fashion_mnist(const std::string & dir, const ImageSourceOptions & options);

}  // namespace cgm
