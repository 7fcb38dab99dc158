#include "models/t5_base.h"

#include "core/error.h"
#include "models/model_family.h"

#include <filesystem>

namespace cgm {

T5Base load_t5_base(const std::string & dir, c10::ScalarType dtype, c10::Device device, const T5RunOptions & run) {
    require_model_folder(dir);
    T5Model model = T5Model::load(dir, dtype, device);
    if (!std::filesystem::exists(std::filesystem::path(dir) / "spiece.model")) {
        fail(dir, "has no tokenizer (spiece.model); write the base with save-base --tokenizer DIR");
    }
    T5Tokenizer tokenizer(dir);
    if (tokenizer.size() > model.config().vocab_size) {
        fail(dir, "tokenizer has " + std::to_string(tokenizer.size()) + " tokens but vocab_size is " +
                      std::to_string(model.config().vocab_size));
    }
    if (run.ff_topk < 0 || run.q_chunk < 0 || run.attn_topk < 0) {
        throw Error("--ff-topk, --q-chunk and --attn-topk must be >= 0");
    }
    model.options() = run;
    return { dir, std::move(model), std::move(tokenizer) };
}

}  // namespace cgm
