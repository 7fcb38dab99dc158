#include "models/activation.h"

#include "core/error.h"

#include <ATen/ATen.h>

namespace cgm {

Activation parse_hidden_act(const std::string & name, const std::string & source) {
    if (name == "relu") {
        return Activation::relu;
    }
    if (name == "gelu") {
        return Activation::gelu;
    }
    if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
        return Activation::gelu_tanh;
    }
    if (name == "silu" || name == "swish") {
        return Activation::silu;
    }
    fail(source, "unsupported hidden_act '" + name + "' (expected relu, gelu, gelu_new, gelu_pytorch_tanh, silu)");
}

at::Tensor activate(Activation activation, const at::Tensor & x) {
    switch (activation) {
        case Activation::relu: return at::relu(x);
        case Activation::gelu: return at::gelu(x);
        case Activation::gelu_tanh: return at::gelu(x, "tanh");
        case Activation::silu: return at::silu(x);
    }
    return x;
}

}  // namespace cgm
