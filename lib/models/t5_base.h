#pragma once
// A T5 base checkpoint as the programs use it: the model and its tokenizer, checked to fit.
#include "models/t5.h"
#include "text/t5_tokenizer.h"

#include <string>

namespace cgm {

struct T5Base {
    std::string dir;
    T5Model     model;
    T5Tokenizer tokenizer;
};

T5Base load_t5_base(const std::string & dir, c10::ScalarType dtype, c10::Device device, const T5RunOptions & run = {});

}  // namespace cgm
