#include "adapters/parameter_count.h"

#include <ATen/core/Tensor.h>

namespace cgm {

int64_t numel_of(const NamedTensors & tensors) {
    int64_t n = 0;
    for (const auto & [name, t] : tensors) {
        n += t.numel();
    }
    return n;
}

ParameterCount count_parameters(const AdaptableModel & model, const Adapters & adapters, bool untrained) {
    const int64_t base = model.num_parameters();
    if (adapters.lora) {
        int64_t low_rank = 0;  // A and B; the saved modules stand in for base modules
        for (const auto & [path, layer] : adapters.lora->layers) {
            low_rank += layer->A.numel() + layer->B.numel();
        }
        return { numel_of(adapters.lora->peft_tensors()), base + low_rank };
    }
    if (adapters.mixture) {
        const int64_t experts = numel_of(adapters.mixture->expert_parameters());
        const int64_t gate    = adapters.xlora ? numel_of(adapters.xlora->parameters()) : numel_of(adapters.mixture->gate_parameters());
        const bool    trained = adapters.gate.has_value();  // a static mixture of experts trains nothing itself
        return { trained ? numel_of(gate_tensors(adapters)) : 0, base + experts + gate };
    }
    return { untrained ? 0 : base, base };
}

}  // namespace cgm
