// The fixtures' T5 tokenizer on arbitrary text: encode, batch, decode the ids back, and decode
// the input read as 16-bit ids (most outside the vocabulary).
#include "fuzz/fuzz_target.h"
#include "text/t5_tokenizer.h"

#include <ATen/core/Tensor.h>

CGM_FUZZ_TARGET(t5_tokenizer) {
    static const cgm::T5Tokenizer tokenizer(CGM_FUZZ_TOKENIZER_DIR);
    const std::string             text(reinterpret_cast<const char *>(data), size);
    const std::vector<int64_t>    ids = tokenizer.encode(text);
    (void)tokenizer.decode(ids);
    (void)tokenizer.pieces(ids);
    (void)tokenizer.encode_batch({ text, "" }, 8);
    std::vector<int64_t> raw;
    for (size_t i = 0; i + 1 < size; i += 2) {
        raw.push_back(int64_t{ data[i] } << 8 | data[i + 1]);
    }
    (void)tokenizer.decode(raw);
    (void)tokenizer.pieces(raw);
}
