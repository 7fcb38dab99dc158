#pragma once
// BEiT image classifier as Hugging Face transformers' BeitForImageClassification
// (microsoft/beit-base-patch16-224 and its family): patch embedding, CLS token, optional absolute
// position embeddings, relative position bias per layer and/or shared, layer scale, stochastic
// depth, mean pooling + norm (or CLS + final norm), a linear head. Weights keep their HF names.
#include "io/hf_checkpoint.h"
#include "models/adaptable_model.h"
#include "models/beit_config.h"
#include "models/linear.h"
#include "models/param_slots.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace cgm {

struct BeitLayer {
    at::Tensor norm_before_weight, norm_before_bias;  // [D]
    Linear     query, key, value;                     // [D, D]; key has no bias
    Linear     attention_output;                      // [D, D]
    at::Tensor relative_bias_table;                   // [num_relative_distances, H], or undefined
    at::Tensor lambda_1, lambda_2;                    // [D] layer scale, or undefined
    at::Tensor norm_after_weight, norm_after_bias;    // [D]
    Linear     intermediate;                          // [ff, D]
    Linear     output;                                // [D, ff]
};

struct BeitOutput {
    at::Tensor              logits;       // [B, num_labels] float32
    at::Tensor              loss;         // [] float32 cross-entropy, when labels were given
    at::Tensor              pooled;       // [B, D]
    at::Tensor              last_hidden;  // [B, 1 + N, D]
    std::vector<at::Tensor> hidden;       // embeddings, then each layer's output (keep_hidden)
};

class BeitModel : public AdaptableModel {
  public:
    // Reads config.json and the safetensors weights of a Hugging Face BEiT folder; names and shapes
    // are checked against the config and all problems reported together.
    static BeitModel load(const std::string & model_dir, c10::ScalarType dtype = c10::kFloat,
                          c10::Device device = c10::Device(c10::kCPU));
    // Random weights as transformers initialises BEiT (N(0, 0.02) matrices, zero biases, unit norms,
    // layer scale at its init value, zero position tables).
    static BeitModel random(const BeitConfig & config, uint64_t seed, c10::ScalarType dtype = c10::kFloat,
                            c10::Device device = c10::Device(c10::kCPU));

    const BeitConfig & config() const { return config_; }
    void               set_training(bool training) override { training_ = training; }
    bool               training() const override { return training_; }
    c10::ScalarType    dtype() const override;
    c10::Device        device() const override;
    int64_t            hidden_size() const override { return config_.hidden_size; }

    // Every parameter under its Hugging Face name (tensors share storage with the model).
    NamedTensors named_parameters() const override;
    // The linears adapters can attach to: query, key, value, attention.output.dense,
    // intermediate.dense, output.dense of every layer, and the classifier.
    std::vector<NamedLinear> linear_modules() override;
    int64_t                  num_parameters() const override;
    // A new classification head for `labels` (N(0, initializer_range) weights, zero bias), as
    // transformers gives a checkpoint loaded with another num_labels.
    void replace_head(const std::vector<std::string> & labels, uint64_t seed);
    // Every layer's modules see the token sequence; the classifier sees the pooled vector as a
    // one-token sequence. Gates average over the patch tokens (the call's mask is 0 at the CLS token).
    bool sees_routed_tokens(const std::string & path) const override { return path != "classifier"; }
    // Run at the start of every encode(), with the encoder as RoutingInput::encode.
    void set_input_router(std::weak_ptr<InputRouter> router) override { input_router_ = std::move(router); }
    bool has_input_router() const override { return !input_router_.expired(); }
    void check_adapters() const override {}  // every adapter sees the whole sequence
    // With a mixture, forward() gives the mixture's logits and loss (pooled, hidden: undefined).
    void set_output_mixture(std::shared_ptr<OutputMixture> mixture) override { output_mixture_ = std::move(mixture); }
    bool has_output_mixture() const override { return static_cast<bool>(output_mixture_); }
    static ShapeMap          expected_shapes(const BeitConfig & config);

    // pixel_values: [B, C, image_size, image_size], normalised -> tokens [B, 1 + N, D] after every layer
    at::Tensor encode(const at::Tensor & pixel_values, std::vector<at::Tensor> * hidden = nullptr) const;
    // labels: [B] int64 class indices (optional: no loss)
    BeitOutput forward(const at::Tensor & pixel_values, const at::Tensor & labels = {}, bool keep_hidden = false) const;

  private:
    explicit BeitModel(const BeitConfig & config);
    struct LinearSlot {
        std::string path;
        Linear *    linear;
        int64_t     d_out, d_in;
        bool        has_bias;
    };
    std::vector<LinearSlot> linear_slots();
    std::vector<ParamSlot>  slots();
    std::set<std::string>  ignorable_names() const;

    void       check_pixels(const at::Tensor & pixel_values) const;
    at::Tensor embed(const at::Tensor & pixel_values) const;
    BeitOutput plain_forward(const at::Tensor & pixel_values, const at::Tensor & labels, bool keep_hidden) const;
    BeitOutput mixed_forward(const at::Tensor & pixel_values, const at::Tensor & labels) const;
    // patches: [B, 1 + N] 1 at the patch tokens, what the adapters see as the sequence's real positions.
    at::Tensor run_encoder(const at::Tensor & pixel_values, const at::Tensor & patches,
                           std::vector<at::Tensor> * hidden) const;
    at::Tensor layer(const BeitLayer & l, const at::Tensor & x, const at::Tensor & shared_bias, double drop_path,
                     const AdapterCall & call) const;
    at::Tensor attention(const BeitLayer & l, const at::Tensor & x, const at::Tensor & shared_bias,
                         const AdapterCall & call) const;
    at::Tensor relative_bias(const at::Tensor & table) const;  // [num_rel, H] -> [H, 1 + N, 1 + N]
    at::Tensor dropout(const at::Tensor & x, double p) const;
    at::Tensor drop_path(const at::Tensor & x, double p) const;

    BeitConfig             config_;
    bool                   training_ = false;
    std::weak_ptr<InputRouter> input_router_;
    std::shared_ptr<OutputMixture> output_mixture_;
    at::Tensor             cls_token_;            // [1, 1, D]
    at::Tensor             mask_token_;           // [1, 1, D] (use_mask_token)
    at::Tensor             position_embeddings_;  // [1, 1 + N, D] (use_absolute_position_embeddings)
    at::Tensor             patch_weight_;         // [D, C, P, P]
    at::Tensor             patch_bias_;           // [D]
    at::Tensor             shared_bias_table_;    // [num_rel, H] (use_shared_relative_position_bias)
    std::vector<BeitLayer> layers_;
    at::Tensor             final_norm_weight_, final_norm_bias_;  // CLS pooling: beit.layernorm
    at::Tensor             pool_norm_weight_, pool_norm_bias_;    // mean pooling: beit.pooler.layernorm
    Linear                 classifier_;                           // [num_labels, D]
    at::Tensor             relative_index_;  // [1 + N, 1 + N] int64 rows of a relative bias table
};

}  // namespace cgm
