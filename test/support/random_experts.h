#pragma once
// Small LoRA experts with random (non-zero) B, saved as PEFT folders: mixtures to test on.
#include "adapters/lora_mixture.h"
#include "models/t5.h"
#include "support/temp_dir.h"

#include <string>
#include <vector>

namespace cgm::test {

// The module names each of the two experts adapts: {q, v} and {q, wo}.
std::vector<std::vector<std::string>> random_expert_targets();

// Two experts on `model` (ranks 2 and 3, targets as above), saved under dir as e0 and e1.
std::vector<ExpertSpec> random_experts(T5Model & model, const TempDir & dir);

// One expert per entry of `targets` on any model (ranks 2, 3, ...), saved under dir as e0, e1, ...
std::vector<ExpertSpec> random_experts(AdaptableModel & model, const TempDir & dir,
                                       const std::vector<std::vector<std::string>> & targets);

}  // namespace cgm::test
