#pragma once
// Where a model's parameters live, under their Hugging Face names: the one description from which
// a model is loaded, initialised, listed and checked, whatever the architecture.
#include "io/hf_checkpoint.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <set>
#include <string>
#include <vector>

namespace cgm {

struct ParamSlot {
    std::string          name;
    at::Tensor *         tensor;
    std::vector<int64_t> shape;
};

ShapeMap     slot_shapes(const std::vector<ParamSlot> & slots);
NamedTensors slot_tensors(const std::vector<ParamSlot> & slots);
int64_t      slot_numel(const std::vector<ParamSlot> & slots);

// Checks the folder's tensors against the slots (all problems in one Error naming the folder, names
// in `ignorable` tolerated) and fills every slot, converted to dtype on device.
void load_slots(const std::string & model_dir, const std::vector<ParamSlot> & slots,
                const std::set<std::string> & ignorable, c10::ScalarType dtype, c10::Device device);

}  // namespace cgm
