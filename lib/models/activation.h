#pragma once
// The activation functions of Hugging Face configs, shared by every model.
#include <ATen/core/Tensor.h>

#include <string>

namespace cgm {

enum class Activation { relu, gelu, gelu_tanh, silu };

// A config's hidden_act: relu, gelu (exact, erf), gelu_new / gelu_pytorch_tanh (tanh approximation),
// silu / swish; anything else is an Error naming `source`.
Activation parse_hidden_act(const std::string & name, const std::string & source);

at::Tensor activate(Activation activation, const at::Tensor & x);

}  // namespace cgm
