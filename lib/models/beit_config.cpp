#include "models/beit_config.h"

#include "core/error.h"
#include "io/json_fields.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

namespace cgm {

namespace {

// Far above any classification dataset's (ImageNet-21k has 21,841 classes).
constexpr int64_t kMaxLabels = int64_t{ 1 } << 20;

// id2label {"0": "cat", ...} (every index from 0, once), else num_labels generic names.
std::vector<std::string> read_labels(const nlohmann::json & j, const std::string & source) {
    std::vector<std::string> labels;
    if (j.contains("id2label") && !j["id2label"].is_null()) {
        const nlohmann::json & m = j["id2label"];
        if (!m.is_object()) {
            fail(source, "'id2label' must be an object {\"0\": name, ...}");
        }
        labels.resize(m.size());
        std::vector<bool> seen(m.size(), false);
        for (const auto & [key, name] : m.items()) {
            size_t index = 0;
            try {
                size_t used = 0;
                index       = std::stoul(key, &used);
                if (used != key.size()) {
                    throw std::invalid_argument(key);
                }
            } catch (const std::exception &) {
                fail(source, "'id2label' key '" + key + "' is not an index");
            }
            if (index >= m.size() || seen[index]) {
                fail(source, "'id2label' indices must be 0.." + std::to_string(m.size() - 1) + ", each once");
            }
            if (!name.is_string()) {
                fail(source, "'id2label' name of " + key + " must be a string");
            }
            seen[index]   = true;
            labels[index] = name.get<std::string>();
        }
    }
    const int64_t n = json_int(j, "num_labels", source, false, static_cast<int64_t>(labels.size()), 1);
    // Each label gets a generated name below: a bound keeps a typo from exhausting memory.
    if (n > kMaxLabels) {
        fail(source, "'num_labels' " + std::to_string(n) + " is more than " + std::to_string(kMaxLabels));
    }
    if (labels.empty()) {
        for (int64_t i = 0; i < (n > 0 ? n : 2); ++i) {
            labels.push_back("LABEL_" + std::to_string(i));
        }
    } else if (n != static_cast<int64_t>(labels.size())) {
        fail(source, "'num_labels' " + std::to_string(n) + " disagrees with 'id2label' (" +
                         std::to_string(labels.size()) + " names)");
    }
    return labels;
}

double probability(const nlohmann::json & j, const char * key, const std::string & source, double fallback) {
    const double p = json_double(j, key, source, fallback);
    if (p < 0.0 || p >= 1.0) {
        fail(source, std::string("'") + key + "' must be in [0, 1)");
    }
    return p;
}

}  // namespace

BeitConfig BeitConfig::from_json(const nlohmann::json & j, const std::string & source) {
    if (!j.is_object()) {
        fail(source, "config is not a JSON object");
    }
    if (json_string(j, "model_type", source, "beit") != "beit") {
        fail(source, "model_type " + j["model_type"].dump() + " is not a BEiT model");
    }
    BeitConfig c;
    c.hidden_size         = json_int(j, "hidden_size", source, false, 768, 1);
    c.num_hidden_layers   = json_int(j, "num_hidden_layers", source, false, 12, 1);
    c.num_attention_heads = json_int(j, "num_attention_heads", source, false, 12, 1);
    c.intermediate_size   = json_int(j, "intermediate_size", source, false, 3072, 1);
    c.hidden_act_name     = json_string(j, "hidden_act", source, "gelu");
    c.hidden_act          = parse_hidden_act(c.hidden_act_name, source);
    c.hidden_dropout_prob = probability(j, "hidden_dropout_prob", source, 0.0);
    c.attention_probs_dropout_prob = probability(j, "attention_probs_dropout_prob", source, 0.0);
    c.drop_path_rate               = probability(j, "drop_path_rate", source, 0.1);
    c.layer_norm_eps               = json_double(j, "layer_norm_eps", source, 1e-12);
    c.initializer_range            = json_double(j, "initializer_range", source, 0.02);
    c.layer_scale_init_value       = json_double(j, "layer_scale_init_value", source, 0.1);
    c.image_size                   = json_int(j, "image_size", source, false, 224, 1);
    c.patch_size                   = json_int(j, "patch_size", source, false, 16, 1);
    c.num_channels                 = json_int(j, "num_channels", source, false, 3, 1);
    c.use_absolute_position_embeddings  = json_bool(j, "use_absolute_position_embeddings", source, false);
    c.use_relative_position_bias        = json_bool(j, "use_relative_position_bias", source, false);
    c.use_shared_relative_position_bias = json_bool(j, "use_shared_relative_position_bias", source, false);
    c.use_mean_pooling                  = json_bool(j, "use_mean_pooling", source, true);
    c.use_mask_token                    = json_bool(j, "use_mask_token", source, false);
    c.labels                            = read_labels(j, source);
    if (c.hidden_size % c.num_attention_heads != 0) {
        fail(source, "'hidden_size' " + std::to_string(c.hidden_size) + " is not a multiple of 'num_attention_heads' " +
                         std::to_string(c.num_attention_heads));
    }
    if (c.image_size % c.patch_size != 0) {
        fail(source, "'image_size' " + std::to_string(c.image_size) + " is not a multiple of 'patch_size' " +
                         std::to_string(c.patch_size));
    }
    return c;
}

BeitConfig BeitConfig::read(const std::string & config_path) {
    return from_json(read_json_file(config_path), config_path);
}

nlohmann::json BeitConfig::to_json() const {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (size_t i = 0; i < labels.size(); ++i) {
        id2label[std::to_string(i)] = labels[i];
        label2id[labels[i]]         = i;
    }
    return { { "architectures", { "BeitForImageClassification" } },
             { "model_type", "beit" },
             { "hidden_size", hidden_size },
             { "num_hidden_layers", num_hidden_layers },
             { "num_attention_heads", num_attention_heads },
             { "intermediate_size", intermediate_size },
             { "hidden_act", hidden_act_name },
             { "hidden_dropout_prob", hidden_dropout_prob },
             { "attention_probs_dropout_prob", attention_probs_dropout_prob },
             { "drop_path_rate", drop_path_rate },
             { "layer_norm_eps", layer_norm_eps },
             { "initializer_range", initializer_range },
             { "layer_scale_init_value", layer_scale_init_value },
             { "image_size", image_size },
             { "patch_size", patch_size },
             { "num_channels", num_channels },
             { "use_absolute_position_embeddings", use_absolute_position_embeddings },
             { "use_relative_position_bias", use_relative_position_bias },
             { "use_shared_relative_position_bias", use_shared_relative_position_bias },
             { "use_mean_pooling", use_mean_pooling },
             { "use_mask_token", use_mask_token },
             { "id2label", id2label },
             { "label2id", label2id } };
}

std::string BeitConfig::describe() const {
    return "beit hidden " + std::to_string(hidden_size) + " layers " + std::to_string(num_hidden_layers) + " heads " +
           std::to_string(num_attention_heads) + " ff " + std::to_string(intermediate_size) + " image " +
           std::to_string(image_size) + "/" + std::to_string(patch_size) + " labels " + std::to_string(num_labels());
}

}  // namespace cgm
