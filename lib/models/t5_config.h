#pragma once
// The fields of a Hugging Face T5 config.json that the model needs, with HF's defaults.
#include "models/activation.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace cgm {

struct T5Config {
    int64_t vocab_size                      = 0;
    int64_t d_model                         = 0;
    int64_t d_kv                            = 0;
    int64_t d_ff                            = 0;
    int64_t num_layers                      = 0;
    int64_t num_decoder_layers              = 0;
    int64_t num_heads                       = 0;
    int64_t relative_attention_num_buckets  = 32;
    int64_t relative_attention_max_distance = 128;
    double  dropout_rate                    = 0.1;
    double  layer_norm_epsilon              = 1e-6;
    // "relu" (T5 v1.0) or "gated-gelu" (v1.1/Flan); generally "[gated-]relu|gelu|silu".
    std::string  feed_forward_proj   = "relu";
    bool         gated_ff            = false;
    Activation activation          = Activation::relu;
    bool         tie_word_embeddings = true;  // v1.0: lm_head = shared, output scaled by d_model^-0.5
    int64_t      pad_token_id           = 0;
    int64_t      eos_token_id           = 1;
    int64_t      decoder_start_token_id = 0;
    bool         encoder_only           = false;  // architectures: ["T5EncoderModel"]: no decoder, no lm_head

    int64_t inner_dim() const { return num_heads * d_kv; }

    // Parses and validates; errors name `source` (the file) and the key.
    static T5Config from_json(const nlohmann::json & j, const std::string & source);
    static T5Config read(const std::string & config_path);

    // "t5 gated-gelu d_model 64 d_ff 128 heads 4x16 layers 2+2 vocab 256 untied"
    std::string describe() const;
};

}  // namespace cgm
