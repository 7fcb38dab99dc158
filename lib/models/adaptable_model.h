#pragma once
// What adapters, gates, the trainer and evaluation use of any model (T5, BEiT), so that they are
// written once: its linears (the slots where LoRA, mixtures and gates plug in), parameters, hidden
// size, device and dtype, which modules see the routed token sequence, and a hook run before every
// forward pass for gates that route from the input (X-LoRA's scaling pass).
#include "io/safetensors.h"
#include "models/linear.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cgm {

class OutputMixture;

// The input of the forward pass about to run, as a routing gate sees it.
struct RoutingInput {
    // The model's last hidden states on this input, [B, S, d], computed with the adapters as they
    // are when it is called (the hook is not run again).
    std::function<at::Tensor()> encode;
    const at::Tensor *          mask     = nullptr;  // [B, S] 1 = real token; nullptr: every position is real
    bool                        training = false;    // the model's mode
};

// A gate that routes from the model's input before every forward pass (X-LoRA's scaling pass).
// Models hold it weakly: once the gate is dropped, forward passes run without it.
class InputRouter {
  public:
    virtual ~InputRouter()                        = default;
    virtual void route(const RoutingInput & input) = 0;
};

class AdaptableModel {
  public:
    virtual ~AdaptableModel() = default;

    virtual std::vector<NamedLinear> linear_modules() = 0;
    // Every parameter under its Hugging Face name (tensors share storage with the model).
    virtual NamedTensors    named_parameters() const = 0;
    virtual int64_t         num_parameters() const   = 0;
    virtual int64_t         hidden_size() const      = 0;
    virtual c10::Device     device() const           = 0;
    virtual c10::ScalarType dtype() const            = 0;
    virtual bool            training() const         = 0;
    virtual void            set_training(bool training) = 0;

    // Whether the module's input is the sequence RoutingInput::encode describes, token by token
    // (T5's encoder and cross-attention keys/values; all of BEiT's layers); the others (T5's
    // decoder) take that sequence's mean routing.
    virtual bool sees_routed_tokens(const std::string & path) const = 0;
    // Run at the start of every forward pass (T5: of every encode()) while it lives; empty: none.
    virtual void set_input_router(std::weak_ptr<InputRouter> router) = 0;
    virtual bool has_input_router() const                            = 0;  // set and alive
    // Refuses adapters the model's run options cannot serve (T5's --q-chunk with gates that need
    // a feed-forward layer's whole sequence): an Error naming the option, before any pass runs.
    virtual void check_adapters() const = 0;
    // An output-level mixture of experts (adapters/output_mixture.h): forward passes (and T5's
    // decoding) then mix whole experts' outputs; nullptr: none.
    virtual void set_output_mixture(std::shared_ptr<OutputMixture> mixture) = 0;
    virtual bool has_output_mixture() const                                 = 0;
};

}  // namespace cgm
