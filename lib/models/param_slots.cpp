#include "models/param_slots.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <filesystem>

namespace cgm {

ShapeMap slot_shapes(const std::vector<ParamSlot> & slots) {
    ShapeMap shapes;
    for (const auto & s : slots) {
        shapes[s.name] = s.shape;
    }
    return shapes;
}

NamedTensors slot_tensors(const std::vector<ParamSlot> & slots) {
    NamedTensors out;
    for (const auto & s : slots) {
        out.emplace_back(s.name, *s.tensor);
    }
    return out;
}

int64_t slot_numel(const std::vector<ParamSlot> & slots) {
    int64_t n = 0;
    for (const auto & s : slots) {
        n += s.tensor->numel();
    }
    return n;
}

void load_slots(const std::string & model_dir, const std::vector<ParamSlot> & slots,
                const std::set<std::string> & ignorable, c10::ScalarType dtype, c10::Device device) {
    const HfWeights weights(model_dir);
    weights.check(slot_shapes(slots), ignorable);
    for (const auto & s : slots) {
        const at::Tensor stored = weights.tensor(s.name);
        if (!at::isFloatingType(stored.scalar_type())) {
            fail(model_dir, "tensor '" + s.name + "' has non-float dtype " + c10::toString(stored.scalar_type()));
        }
        *s.tensor = stored.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
    }
}

}  // namespace cgm
