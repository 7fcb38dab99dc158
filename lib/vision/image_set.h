#pragma once
// The labelled images a program trains or evaluates on: one or more prepare-data splits
// (DIR/<split>.safetensors) concatenated, each example remembering its dataset folder as its domain.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace cgm {

struct ImageSet {
    at::Tensor               images;   // [N, H, W, 3] uint8
    at::Tensor               labels;   // [N] int64
    std::vector<std::string> domains;  // [N]: the name of each example's dataset folder
    std::map<std::string, std::vector<std::string>> class_names;  // per domain, in label order

    int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
    // The class name of `label` in `domain`; "class N" for a label the domain does not name (a model
    // head with more classes than the data).
    std::string class_name(const std::string & domain, int64_t label) const;
};

// Each path is a split file written by prepare-data (e.g. data/fire/train.safetensors); all must
// have images of one size. An Error names the file otherwise.
ImageSet read_image_sets(const std::vector<std::string> & paths);

// Whether a --train/--val path names image shards rather than text records.
bool is_image_split_path(const std::string & path);

}  // namespace cgm
