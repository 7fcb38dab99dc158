#include "support/cli_workspace.h"

#include "support/fixtures.h"
#include "text/t5_tokenizer.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace cgm::test {

void require_failure(const ProgramResult & r, int code, const std::vector<std::string> & needles,
                     const std::string & out_dir) {
    INFO("exit code " << r.exit_code << ", stderr: " << r.err << "stdout: " << r.out);
    REQUIRE(r.exit_code == code);
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    REQUIRE(r.err.back() == '\n');
    for (const auto & needle : needles) {
        REQUIRE_THAT(r.err, Contains(needle));
    }
    REQUIRE(!fs::exists(out_dir));
    const std::string staging = fs::path(out_dir).filename().string() + ".tmp-";
    for (const auto & entry : fs::directory_iterator(fs::path(out_dir).parent_path())) {
        REQUIRE(entry.path().filename().string().rfind(staging, 0) == std::string::npos);
    }
}

ProgramResult run_ok(const std::string & program, const std::string & args) {
    const ProgramResult r = run_program(program, args);
    INFO(program << " " << args << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r;
}

std::string Workspace::save_base(const std::string & name, const nlohmann::json & overrides) const {
    nlohmann::json config = { { "model_type", "t5" },      { "vocab_size", vocab },
                              { "d_model", 32 },           { "d_kv", 8 },
                              { "d_ff", 64 },              { "num_layers", 1 },
                              { "num_decoder_layers", 1 }, { "num_heads", 4 },
                              { "feed_forward_proj", "gated-gelu" }, { "tie_word_embeddings", false },
                              { "pad_token_id", 0 },       { "eos_token_id", 1 },
                              { "decoder_start_token_id", 0 } };
    config.update(overrides);
    const std::string dir = file(name);
    write_bytes(file(name + ".json"), config.dump());
    const ProgramResult r = run_program("save-base", "--init-config " + file(name + ".json") + " --tokenizer " +
                                                         tokenizer + " --out " + dir + " --log-level warn");
    INFO("save-base: " << r.err);
    REQUIRE(r.exit_code == 0);
    return dir;
}

std::unique_ptr<Workspace> make_workspace(const std::string & what) {
    const std::optional<Fixture> tok = fixture_or_skip("t5_tokenizer", what);
    if (!tok) {
        return nullptr;
    }
    auto w       = std::make_unique<Workspace>();
    w->tokenizer = tokenizer_dir(*tok);
    // The model reads the tokenizer's ids, so its vocab is the tokenizer's size (pieces + extra ids).
    w->vocab = tok->manifest.contains("vocab_size") ? tok->manifest["vocab_size"].get<int64_t>()
                                                    : T5Tokenizer(w->tokenizer).size();
    w->save_base("base");
    const ProgramResult data =
        run_program("prepare-data", "--format wordnet --limit 20 --out " + w->data + " --log-level warn");
    INFO("prepare-data: " << data.err);
    REQUIRE(data.exit_code == 0);
    return w;
}

std::string train_lora(const Workspace & w, const std::string & name, const std::string & extra_args,
                       const std::string & base) {
    const std::string   out = w.file(name);
    const ProgramResult r   = run_program("lora-finetune", "--base " + (base.empty() ? w.base : base) + " --out " + out +
                                                               " --steps 1" + w.train_args() + " " + extra_args);
    INFO("lora-finetune: " << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(out + "/trainer_state.json"));
    return out;
}

nlohmann::json read_json(const std::string & path) {
    return nlohmann::json::parse(read_bytes(path));
}

std::map<std::string, std::string> snapshot(const std::string & dir) {
    std::map<std::string, std::string> files;
    for (const auto & entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (entry.is_regular_file()) {
            files[std::filesystem::relative(entry.path(), dir).string()] = read_bytes(entry.path().string());
        }
    }
    return files;
}

}  // namespace cgm::test
