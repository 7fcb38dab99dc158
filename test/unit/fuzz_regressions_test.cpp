// Every saved fuzz input through its target (test/fuzz/fuzz_target.h): the inputs that once
// crashed or exhausted a parser (test/fuzz/regressions/<target>/) and the hand-made seeds
// (test/fuzz/seeds/<target>/). A parser may answer bad input with cgm::Error and nothing else.
#include "fuzz/fuzz_target.h"
#include "support/temp_dir.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;
using namespace cgm;

namespace {

const fs::path kFuzzDir = CGM_FUZZ_DIR;

// The files of every target's folder under `kind` (regressions or seeds), sorted.
std::vector<std::pair<std::string, fs::path>> saved_inputs(const std::string & kind) {
    std::vector<std::pair<std::string, fs::path>> out;
    if (!fs::is_directory(kFuzzDir / kind)) {
        return out;
    }
    for (const auto & target : fs::directory_iterator(kFuzzDir / kind)) {
        for (const auto & file : fs::recursive_directory_iterator(target.path())) {
            if (file.is_regular_file()) {
                out.emplace_back(target.path().filename().string(), file.path());
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

void replay(const std::string & kind) {
    const auto inputs = saved_inputs(kind);
    for (const auto & [target, file] : inputs) {
        INFO(kind << "/" << target << ": " << file.filename().string());
        REQUIRE(fuzz::registry().count(target) == 1);
        const std::string bytes = test::read_bytes(file.string());
        CHECK_NOTHROW(fuzz::run_target(fuzz::registry().at(target), reinterpret_cast<const uint8_t *>(bytes.data()),
                                       bytes.size()));
    }
}

}  // namespace

TEST_CASE("Every parser has a fuzz target with seeds", "[unit][fuzz-regressions]") {
    for (const char * name : { "safetensors", "t5_config", "beit_config", "lora_config", "gate_config",
                               "preprocessor_config", "mcq_jsonl", "raw_mcq_jsonl", "scienceqa_json", "unifiedqa_tsv",
                               "csv", "idx", "image_decode", "t5_tokenizer", "config_file" }) {
        INFO(name);
        REQUIRE(fuzz::registry().count(name) == 1);
        REQUIRE(fs::is_directory(kFuzzDir / "seeds" / name));
    }
}

TEST_CASE("Fuzz regression inputs fail with cgm::Error only", "[unit][fuzz-regressions]") {
    replay("regressions");
}

TEST_CASE("Fuzz seeds fail with cgm::Error only", "[unit][fuzz-regressions]") {
    replay("seeds");
}
