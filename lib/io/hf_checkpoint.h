#pragma once
// A Hugging Face model folder: config.json plus model.safetensors, or the shards named by
// model.safetensors.index.json.
#include "io/safetensors.h"

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cgm {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

class HfWeights {
  public:
    explicit HfWeights(const std::string & model_dir);

    std::vector<std::string> names() const;
    bool                     contains(const std::string & name) const;
    std::vector<int64_t>     shape(const std::string & name) const;
    at::Tensor               tensor(const std::string & name) const;  // CPU, as stored

    // Checks names and shapes against what the architecture expects. Every missing tensor, every
    // unexpected one (not in `ignorable`) and every shape mismatch is reported in one Error.
    void check(const ShapeMap & expected, const std::set<std::string> & ignorable) const;

  private:
    std::string                                                     dir_;
    std::vector<std::shared_ptr<SafetensorsReader>>                 files_;
    std::map<std::string, std::shared_ptr<SafetensorsReader>>       owner_;  // tensor name -> file
};

// Writes a model folder's files into `dir` (created if needed), each atomically: config.json,
// model.safetensors, and copies of `extra_files` (tokenizer files, generation_config.json).
void write_hf_model_dir(const std::string & dir, const nlohmann::json & config, const NamedTensors & tensors,
                        const std::vector<std::string> & extra_files);

// The tokenizer, generation and image-preprocessor files of a model folder that exist there.
std::vector<std::string> hf_side_files(const std::string & model_dir);

}  // namespace cgm
