#pragma once
// Labelled images read from a dataset source (an image folder, Fashion-MNIST), already at the size
// the shards are written in, so that decoding and resizing happen once, in prepare-data.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct ImageSourceOptions {
    std::vector<std::string> classes;           // names (or a source's indices); empty: every class
    int64_t                  per_class  = 0;    // the first N images of each class; 0: all
    int64_t                  image_size = 224;  // S: every image S x S; 0: the source's size, which must not vary
    int64_t                  skip_per_class = 0;  // the first N images of each class are left out (before per_class)
};

struct LabeledImages {
    static constexpr size_t kSkippedListed = 20;  // skipped files named, the rest only counted

    std::vector<std::string> class_names;  // in label order
    std::vector<at::Tensor>  images;       // each [S, S, 3] uint8
    std::vector<int64_t>     labels;       // index into class_names
    int64_t                  skipped = 0;
    std::vector<std::string> skipped_first;  // "file: reason" of the first kSkippedListed

    // image: [H, W, 3] uint8, resized as Pillow's bicubic resize to image_size x image_size unless
    // it has that size already; with image_size 0 a size other than the first image's is an Error
    // naming `where`.
    void add(const at::Tensor & image, int64_t label, int64_t image_size, const std::string & where);
    void skip(const std::string & reason);
    int64_t count(int64_t label) const;
};

}  // namespace cgm
