#include "support/tiny_beit.h"

namespace cgm::test {

BeitModel tiny_beit(const nlohmann::json & overrides, uint64_t seed) {
    nlohmann::json config = { { "hidden_size", 16 },       { "num_hidden_layers", 2 }, { "num_attention_heads", 2 },
                              { "intermediate_size", 24 }, { "image_size", 8 },        { "patch_size", 4 } };
    config.update(overrides);
    return BeitModel::random(BeitConfig::from_json(config, "test"), seed);
}

}  // namespace cgm::test
