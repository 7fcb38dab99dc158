#pragma once
// A tiny random BEiT for tests: hidden 16, 2 layers of 2 heads, 8x8 images in 4x4 patches.
#include "models/beit.h"

#include <nlohmann/json.hpp>

namespace cgm::test {

// `overrides` change or add config.json keys (labels, dropout, position bias).
BeitModel tiny_beit(const nlohmann::json & overrides, uint64_t seed = 2);

}  // namespace cgm::test
