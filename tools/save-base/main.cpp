// save-base: validate a Hugging Face T5 folder and write the project's base checkpoint in the
// same layout (config.json + model.safetensors + tokenizer files), so transformers reads it back.
#include "cli/program.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "text/t5_tokenizer.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

const char * const kTokenizerFiles[] = { "spiece.model", "tokenizer_config.json", "special_tokens_map.json",
                                         "added_tokens.json", "tokenizer.json" };

std::string with_thousands(int64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
        s.insert(static_cast<size_t>(i), ",");
    }
    return s;
}

// Validates the tokenizer in `dir` against the model and returns the files to copy.
std::vector<fs::path> tokenizer_files(const std::string & dir, const T5Config & config) {
    const T5Tokenizer tokenizer(dir);
    if (tokenizer.size() > config.vocab_size) {
        fail(dir, "tokenizer has " + std::to_string(tokenizer.size()) + " tokens but the model's vocab_size is " +
                      std::to_string(config.vocab_size));
    }
    std::vector<fs::path> files;
    for (const char * name : kTokenizerFiles) {
        if (fs::exists(fs::path(dir) / name)) {
            files.push_back(fs::path(dir) / name);
        }
    }
    return files;
}

void save_base(const std::string & hf_dir, const std::string & out_dir, const std::string & dtype_name,
               const std::string & tokenizer_dir, const std::string & device_name) {
    const c10::ScalarType dtype  = parse_float_dtype(dtype_name);
    const c10::Device     device = parse_device(device_name);
    const T5Model         model  = T5Model::load(hf_dir, dtype, device);

    std::vector<fs::path> copied;  // tokenizer files, copied as they are
    if (!tokenizer_dir.empty()) {
        copied = tokenizer_files(tokenizer_dir, model.config());
    } else if (fs::exists(fs::path(hf_dir) / "spiece.model")) {
        copied = tokenizer_files(hf_dir, model.config());
    } else {
        spdlog::warn("{}: no spiece.model; the checkpoint will have no tokenizer (pass --tokenizer DIR)", hf_dir);
    }

    const std::string config_path = (fs::path(hf_dir) / "config.json").string();
    nlohmann::json    config      = read_json_file(config_path);
    config["torch_dtype"]         = hf_dtype_name(dtype);

    StagedDirectory out(out_dir);
    const fs::path  staging(out.path());
    write_json_file((staging / "config.json").string(), config);
    write_safetensors((staging / "model.safetensors").string(), model.named_parameters());
    const bool has_tokenizer = !copied.empty();
    if (fs::exists(fs::path(hf_dir) / "generation_config.json")) {
        copied.push_back(fs::path(hf_dir) / "generation_config.json");
    }
    for (const fs::path & src : copied) {
        const fs::path dst = staging / src.filename();
        fs::copy_file(src, dst);
        fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
    }
    out.commit();
    std::printf("%s: %s parameters, %s%s -> %s\n", model.config().describe().c_str(),
                with_thousands(model.num_parameters()).c_str(), hf_dtype_name(dtype).c_str(),
                has_tokenizer ? ", with tokenizer" : ", no tokenizer", out_dir.c_str());
}

}  // namespace

int main(int argc, char ** argv) {
    CLI::App      app("Validate a Hugging Face T5 folder and write the project's base checkpoint", "save-base");
    CommonOptions common;
    std::string   hf_dir, out_dir, dtype = "f32", tokenizer_dir;
    app.add_option("--hf", hf_dir, "Hugging Face model folder (config.json + model.safetensors)")->required();
    app.add_option("--out", out_dir, "Output folder (replaced atomically if it holds an earlier checkpoint)")->required();
    app.add_option("--dtype", dtype, "Weight dtype to write: f32 or bf16")->capture_default_str();
    app.add_option("--tokenizer", tokenizer_dir, "Folder with spiece.model (default: the --hf folder)");
    add_common_options(app, common);
    return run_program(app, common, argc, argv, [&] { save_base(hf_dir, out_dir, dtype, tokenizer_dir, common.device); });
}
