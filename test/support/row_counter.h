#pragma once
// What a model really executes, for checking FLOP counts: a counting adapter on every linear
// module records the rows of input each one processes while `work` runs.
#include "models/adaptable_model.h"

#include <functional>
#include <map>
#include <string>

namespace cgm::test {

struct ExecutedRows {
    std::map<std::string, double> rows;  // module path -> rows processed
    double                        linear_flops = 0.0;  // 2 * rows * d_in * d_out summed over the modules
};

// Attaches the counters (any adapter already attached is replaced, and none is left afterwards).
ExecutedRows count_executed_rows(AdaptableModel & model, const std::function<void()> & work);

}  // namespace cgm::test
