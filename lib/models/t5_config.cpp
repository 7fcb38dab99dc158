#include "models/t5_config.h"

#include "core/error.h"
#include "io/json_fields.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

namespace cgm {

T5Config T5Config::from_json(const nlohmann::json & j, const std::string & source) {
    if (!j.is_object()) {
        fail(source, "config is not a JSON object");
    }
    if (j.contains("model_type") && j["model_type"] != "t5") {
        fail(source, "model_type " + j["model_type"].dump() + " is not a T5 model");
    }
    T5Config c;
    c.vocab_size         = json_int(j, "vocab_size", source, true, 0, 1);
    c.d_model            = json_int(j, "d_model", source, true, 0, 1);
    c.d_kv               = json_int(j, "d_kv", source, true, 0, 1);
    c.d_ff               = json_int(j, "d_ff", source, true, 0, 1);
    c.num_layers         = json_int(j, "num_layers", source, true, 0, 1);
    c.num_decoder_layers = json_int(j, "num_decoder_layers", source, false, c.num_layers, 1);
    c.num_heads          = json_int(j, "num_heads", source, true, 0, 1);
    c.relative_attention_num_buckets  = json_int(j, "relative_attention_num_buckets", source, false, 32, 2);
    c.relative_attention_max_distance = json_int(j, "relative_attention_max_distance", source, false, 128, 1);
    c.dropout_rate                    = json_double(j, "dropout_rate", source, 0.1);
    c.layer_norm_epsilon              = json_double(j, "layer_norm_epsilon", source, 1e-6);
    if (c.dropout_rate < 0.0 || c.dropout_rate >= 1.0) {
        fail(source, "'dropout_rate' must be in [0, 1)");
    }
    c.pad_token_id           = json_int(j, "pad_token_id", source, false, 0, 0);
    c.eos_token_id           = json_int(j, "eos_token_id", source, false, 1, 0);
    c.decoder_start_token_id = json_int(j, "decoder_start_token_id", source, false, c.pad_token_id, 0);
    // transformers >= 5 writes tie_word_embeddings true for every T5 and marks v1.1's untied,
    // unscaled head with scale_decoder_outputs false (its lm_head.weight is in the checkpoint).
    for (const char * key : { "tie_word_embeddings", "scale_decoder_outputs" }) {
        if (j.contains(key)) {
            if (!j[key].is_boolean()) {
                fail(source, std::string("'") + key + "' must be true or false");
            }
            c.tie_word_embeddings = j[key].get<bool>();
        }
    }

    if (j.contains("architectures") && j["architectures"].is_array()) {
        for (const auto & a : j["architectures"]) {
            c.encoder_only = c.encoder_only || a == "T5EncoderModel";
        }
    }
    // HF: "gated-<act>" or "<act>"; "gated-gelu" means the tanh approximation (gelu_new).
    if (j.contains("feed_forward_proj")) {
        if (!j["feed_forward_proj"].is_string()) {
            fail(source, "'feed_forward_proj' must be a string");
        }
        c.feed_forward_proj = j["feed_forward_proj"].get<std::string>();
    }
    std::string act = c.feed_forward_proj;
    if (act.rfind("gated-", 0) == 0) {
        c.gated_ff = true;
        act        = act.substr(6);
    }
    if (act == "relu") {
        c.activation = Activation::relu;
    } else if (act == "gelu") {
        c.activation = c.gated_ff ? Activation::gelu_tanh : Activation::gelu;
    } else if (act == "gelu_new") {
        c.activation = Activation::gelu_tanh;
    } else if (act == "silu") {
        c.activation = Activation::silu;
    } else {
        fail(source, "unsupported feed_forward_proj '" + c.feed_forward_proj +
                         "' (expected relu, gelu, silu, optionally with a 'gated-' prefix)");
    }
    for (const int64_t id : { c.pad_token_id, c.eos_token_id, c.decoder_start_token_id }) {
        if (id >= c.vocab_size) {
            fail(source, "special token id " + std::to_string(id) + " is outside vocab_size " + std::to_string(c.vocab_size));
        }
    }
    return c;
}

T5Config T5Config::read(const std::string & config_path) {
    return from_json(read_json_file(config_path), config_path);
}

std::string T5Config::describe() const {
    return "t5 " + feed_forward_proj + " d_model " + std::to_string(d_model) + " d_ff " + std::to_string(d_ff) + " heads " +
           std::to_string(num_heads) + "x" + std::to_string(d_kv) + " layers " + std::to_string(num_layers) + "+" +
           std::to_string(num_decoder_layers) + " vocab " + std::to_string(vocab_size) +
           (tie_word_embeddings ? " tied" : " untied");
}

}  // namespace cgm
