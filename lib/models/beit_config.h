#pragma once
// The fields of a Hugging Face BEiT config.json (BeitForImageClassification) that the model needs,
// with transformers' defaults.
#include "models/activation.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct BeitConfig {
    int64_t    hidden_size          = 768;
    int64_t    num_hidden_layers    = 12;
    int64_t    num_attention_heads  = 12;
    int64_t    intermediate_size    = 3072;
    Activation hidden_act           = Activation::gelu;
    std::string hidden_act_name     = "gelu";
    double     hidden_dropout_prob  = 0.0;
    double     attention_probs_dropout_prob = 0.0;
    double     drop_path_rate       = 0.1;  // stochastic depth, rising linearly from 0 at layer 0
    double     layer_norm_eps       = 1e-12;
    double     initializer_range    = 0.02;  // std of random weight matrices
    double     layer_scale_init_value = 0.1;  // > 0: per-channel scales lambda_1, lambda_2 in every layer
    int64_t    image_size           = 224;
    int64_t    patch_size           = 16;
    int64_t    num_channels         = 3;
    bool       use_absolute_position_embeddings = false;
    bool       use_relative_position_bias        = false;  // a table per layer
    bool       use_shared_relative_position_bias = false;  // one table for the encoder
    bool       use_mean_pooling     = true;   // mean of patch tokens + pooler norm; else CLS + final norm
    bool       use_mask_token       = false;  // pre-training only; the token is loaded and unused
    std::vector<std::string> labels;          // class names by index (id2label); size = num_labels

    int64_t num_labels() const { return static_cast<int64_t>(labels.size()); }
    int64_t head_size() const { return hidden_size / num_attention_heads; }
    int64_t grid() const { return image_size / patch_size; }           // patches per side
    int64_t num_patches() const { return grid() * grid(); }
    int64_t num_relative_distances() const { return (2 * grid() - 1) * (2 * grid() - 1) + 3; }

    // Parses and validates; errors name `source` (the file) and the key.
    static BeitConfig from_json(const nlohmann::json & j, const std::string & source);
    static BeitConfig read(const std::string & config_path);
    // config.json as transformers writes it for BeitForImageClassification.
    nlohmann::json to_json() const;

    // "beit hidden 768 layers 12 heads 12 ff 3072 image 224/16 labels 4"
    std::string describe() const;
};

}  // namespace cgm
