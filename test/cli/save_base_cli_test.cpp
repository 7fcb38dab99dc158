// save-base end to end: the written checkpoint reproduces the fixture, bad input loses nothing.
#include "io/json_file.h"
#include "models/beit.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/run_program.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Exactly one line on stderr, naming `needle`; non-zero exit; the output folder never appears.
void require_clean_failure(const ProgramResult & r, const std::string & out_dir, const std::string & needle) {
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code != 0);
    REQUIRE(r.exit_code < 128);  // an error exit, not a crash
    REQUIRE_THAT(r.err, Contains(needle));
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    REQUIRE(!fs::exists(out_dir));
    for (const auto & entry : fs::directory_iterator(fs::path(out_dir).parent_path())) {
        REQUIRE(entry.path().filename().string().find(".tmp-") == std::string::npos);  // no leftovers
    }
}

// The model folder of the first fixture of kind "t5" ("" after printing SKIPPING when there is none).
std::string t5_model_dir(const std::string & what) {
    const auto f = fixture_or_skip("t5", what);
    return f ? f->path(f->manifest["model_dir"]) : "";
}

}  // namespace

TEST_CASE("save-base writes a checkpoint that reproduces the Hugging Face logits", "[cli][save-base]") {
    for (const Fixture & f : fixtures_of_kind("t5")) {
        TempDir           tmp;
        const std::string out = tmp.file("base");
        const auto        r   = run_program("save-base", "--hf " + f.path(f.manifest["model_dir"]) + " --out " + out);
        INFO(f.name << ": " << r.err);
        REQUIRE(r.exit_code == 0);
        REQUIRE_THAT(r.out, Contains("parameters, float32"));
        REQUIRE(fs::exists(out + "/config.json"));
        REQUIRE(fs::exists(out + "/generation_config.json"));

        const T5Model  model = T5Model::load(out);
        const T5Output res   = model.forward(f.get("input_ids"), f.get("attention_mask"), f.get("decoder_input_ids"),
                                             f.get("labels"));
        CGM_REQUIRE_CLOSE(f, "logits after save-base", res.logits, f.get("logits"));
    }
}

TEST_CASE("save-base on BEiT: the checkpoint reproduces the logits; --labels puts a new head on", "[cli][save-base]") {
    for (const Fixture & f : fixtures_or_skip("beit", "save-base on BEiT")) {
        TempDir           tmp;
        const std::string hf = f.path(f.manifest["model_dir"]);
        const auto        r  = run_program("save-base", "--hf " + hf + " --out " + tmp.file("base"));
        INFO(f.name << ": " << r.err);
        REQUIRE(r.exit_code == 0);
        const BeitOutput same = BeitModel::load(tmp.file("base")).forward(f.get("pixel_values"));
        CGM_REQUIRE_CLOSE(f, "logits after save-base", same.logits, f.get("logits"));

        const auto relabelled = run_program("save-base", "--hf " + hf + " --out " + tmp.file("new-head") +
                                                             " --labels fire,smoke,clear --seed 3");
        INFO(relabelled.err);
        REQUIRE(relabelled.exit_code == 0);
        const nlohmann::json config = read_json_file(tmp.file("new-head/config.json"));
        REQUIRE(config["id2label"] == nlohmann::json({ { "0", "fire" }, { "1", "smoke" }, { "2", "clear" } }));
        REQUIRE(config["label2id"]["clear"] == 2);
        const BeitModel  model = BeitModel::load(tmp.file("new-head"));
        const BeitOutput out   = model.forward(f.get("pixel_values"));
        REQUIRE(out.logits.size(1) == 3);
        // The backbone is the base's: the pooled features are unchanged.
        CGM_REQUIRE_CLOSE(f, "pooled output under a new head", out.pooled, f.get("beit.pooler_output"));

        require_clean_failure(run_program("save-base", "--hf " + hf + " --out " + tmp.file("tok") + " --tokenizer " + hf),
                              tmp.file("tok"), "--tokenizer: a BEiT base has no tokenizer");
    }
    const std::string t5 = t5_model_dir("save-base --labels on T5");
    if (!t5.empty()) {
        TempDir tmp;
        require_clean_failure(run_program("save-base", "--hf " + t5 + " --out " + tmp.file("x") + " --labels a,b"),
                              tmp.file("x"), "--labels: a T5 base has no classification head");
    }
}

TEST_CASE("save-base --dtype bf16 writes bfloat16 weights and says so in config.json", "[cli][save-base]") {
    const std::string model = t5_model_dir("save-base --dtype bf16");
    if (model.empty()) {
        return;
    }
    TempDir           tmp;
    const std::string out = tmp.file("base");
    const auto        r   = run_program("save-base", "--hf " + model + " --out " + out + " --dtype bf16");
    REQUIRE(r.exit_code == 0);
    SafetensorsReader weights(out + "/model.safetensors");
    REQUIRE(weights.entry("shared.weight").dtype == at::kBFloat16);
    REQUIRE_THAT(read_bytes(out + "/config.json"), Contains("\"torch_dtype\": \"bfloat16\""));
}

TEST_CASE("save-base copies and checks the tokenizer", "[cli][save-base]") {
    const std::string model     = t5_model_dir("save-base tokenizer check");
    const auto        tokenizer = fixture_or_skip("t5_tokenizer", "save-base tokenizer check");
    if (model.empty() || !tokenizer) {
        return;
    }
    const int64_t tokens = tokenizer->manifest["vocab_size"].get<int64_t>();
    const int64_t vocab  = read_json_file(model + "/config.json")["vocab_size"].get<int64_t>();
    if (tokens == vocab) {
        std::printf("SKIPPING save-base tokenizer check: the fixtures' tokenizer fits their model (%lld tokens)\n",
                    static_cast<long long>(tokens));
        return;
    }
    TempDir           tmp;
    const std::string out = tmp.file("base");
    const auto r = run_program("save-base", "--hf " + model + " --out " + out + " --tokenizer " + tokenizer_dir(*tokenizer));
    require_clean_failure(r, out, "tokenizer has " + std::to_string(tokens) + " tokens but the model's vocab_size is " +
                                      std::to_string(vocab));
}

TEST_CASE("save-base fails cleanly on bad input", "[cli][save-base]") {
    const std::string model = t5_model_dir("save-base bad input");
    if (model.empty()) {
        return;
    }
    TempDir           tmp;
    const std::string out = tmp.file("base");
    const std::string bad = tmp.file("bad");
    fs::create_directory(bad);

    SECTION("missing folder") {
        require_clean_failure(run_program("save-base", "--hf " + tmp.file("none") + " --out " + out), out,
                              "not a directory");
    }
    SECTION("malformed config.json") {
        write_bytes(bad + "/config.json", "{\"vocab_size\": ");
        fs::copy_file(model + "/model.safetensors", bad + "/model.safetensors");
        require_clean_failure(run_program("save-base", "--hf " + bad + " --out " + out), out,
                              bad + "/config.json: malformed JSON");
    }
    SECTION("truncated model.safetensors") {
        fs::copy_file(model + "/config.json", bad + "/config.json");
        const std::string bytes = read_bytes(model + "/model.safetensors");
        write_bytes(bad + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
        require_clean_failure(run_program("save-base", "--hf " + bad + " --out " + out), out,
                              bad + "/model.safetensors");
    }
    SECTION("checkpoint of another size") {
        nlohmann::json config = read_json_file(model + "/config.json");
        config["d_ff"]        = config["d_ff"].get<int64_t>() * 2;
        write_bytes(bad + "/config.json", config.dump());
        fs::copy_file(model + "/model.safetensors", bad + "/model.safetensors");
        require_clean_failure(run_program("save-base", "--hf " + bad + " --out " + out), out,
                              "checkpoint does not match config.json");
    }
    SECTION("bad spiece.model") {
        fs::copy_file(model + "/config.json", bad + "/config.json");
        fs::copy_file(model + "/model.safetensors", bad + "/model.safetensors");
        write_bytes(bad + "/spiece.model", "not a model");
        require_clean_failure(run_program("save-base", "--hf " + bad + " --out " + out), out, "spiece.model");
    }
    SECTION("unknown flag") {
        require_clean_failure(run_program("save-base", "--hf " + model + " --out " + out + " --frobnicate 3"), out,
                              "--frobnicate");
    }
    SECTION("bad dtype") {
        require_clean_failure(run_program("save-base", "--hf " + model + " --out " + out + " --dtype f8"), out,
                              "--dtype: unknown dtype 'f8'");
    }
    SECTION("CUDA on a machine without it") {
        if (!at::hasCUDA()) {
            require_clean_failure(run_program("save-base", "--hf " + model + " --out " + out + " --device cuda"), out,
                                  "--device");
        }
    }
    SECTION("output folder that is not an earlier output") {
        write_bytes(bad + "/notes.txt", "precious");
        const auto r = run_program("save-base", "--hf " + model + " --out " + bad);
        REQUIRE(r.exit_code == 1);
        REQUIRE_THAT(r.err, Contains("refusing to replace"));
        REQUIRE(read_bytes(bad + "/notes.txt") == "precious");
    }
}

TEST_CASE("flags can come from a TOML --config file; unknown keys are errors", "[cli][save-base]") {
    const std::string model = t5_model_dir("save-base --config");
    if (model.empty()) {
        return;
    }
    TempDir           tmp;
    const std::string out = tmp.file("base");
    write_bytes(tmp.file("ok.toml"), "hf = \"" + model + "\"\nout = \"" + out + "\"\ndtype = \"bf16\"\n");
    const auto r = run_program("save-base", "--config " + tmp.file("ok.toml"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE_THAT(r.out, Contains("bfloat16"));

    const std::string out2 = tmp.file("base2");
    write_bytes(tmp.file("bad.toml"), "hf = \"x\"\nout = \"" + out2 + "\"\nfrobnicate = 1\n");
    require_clean_failure(run_program("save-base", "--config " + tmp.file("bad.toml")), out2,
                          tmp.file("bad.toml") + ":3: unknown key 'frobnicate'");
}
