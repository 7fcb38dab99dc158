#pragma once
// A Hugging Face model folder: config.json plus model.safetensors, or the shards named by
// model.safetensors.index.json.
#include "io/safetensors.h"

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

}  // namespace cgm
