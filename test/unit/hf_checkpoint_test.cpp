// Hugging Face model folders: sharded checkpoints, and every mismatch reported at once.
#include "core/error.h"
#include "io/hf_checkpoint.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The model folder of the first fixture of kind "t5" ("" after printing SKIPPING without one).
std::string fixture_model_dir() {
    const auto f = fixture_or_skip("t5", "checkpoint folder tests");
    return f ? f->path(f->manifest["model_dir"]) : "";
}

// A model folder with the fixture's config and the given tensors.
void write_model(const std::string & dir, const NamedTensors & tensors) {
    fs::copy_file(fixture_model_dir() + "/config.json", dir + "/config.json");
    write_safetensors(dir + "/model.safetensors", tensors);
}

std::string load_error(const std::string & dir) {
    try {
        T5Model::load(dir);
    } catch (const Error & e) {
        return e.what();
    }
    FAIL("T5Model::load accepted a bad model folder: " << dir);
    return "";
}

}  // namespace

TEST_CASE("a sharded checkpoint loads like the single file", "[unit][checkpoint]") {
    const std::string model = fixture_model_dir();
    if (model.empty()) {
        return;
    }
    TempDir            dir;
    const T5Model      reference = T5Model::load(model);
    const NamedTensors params    = reference.named_parameters();
    NamedTensors       first(params.begin(), params.begin() + 10), second(params.begin() + 10, params.end());
    write_safetensors(dir.file("model-00001-of-00002.safetensors"), first);
    write_safetensors(dir.file("model-00002-of-00002.safetensors"), second);
    nlohmann::json index;
    for (const auto & [name, t] : first) {
        index["weight_map"][name] = "model-00001-of-00002.safetensors";
    }
    for (const auto & [name, t] : second) {
        index["weight_map"][name] = "model-00002-of-00002.safetensors";
    }
    write_json_file(dir.file("model.safetensors.index.json"), index);
    fs::copy_file(model + "/config.json", dir.file("config.json"));

    const T5Model sharded = T5Model::load(dir.path());
    for (size_t i = 0; i < params.size(); ++i) {
        REQUIRE(at::equal(sharded.named_parameters()[i].second, params[i].second));
    }
}

TEST_CASE("missing, unexpected and mis-shaped tensors are all named in one error", "[unit][checkpoint]") {
    const std::string model = fixture_model_dir();
    if (model.empty()) {
        return;
    }
    TempDir      dir;
    NamedTensors params = T5Model::load(model).named_parameters();
    const std::string dropped = params[3].first;
    params.erase(params.begin() + 3);
    params.emplace_back("encoder.block.9.extra.weight", at::ones({ 2 }));
    const std::string reshaped = params[0].first;
    params[0].second           = at::ones({ 7, 7 });
    write_model(dir.path(), params);

    const std::string what = load_error(dir.path());
    REQUIRE_THAT(what, Contains(dir.path()));
    REQUIRE_THAT(what, Contains("1 missing (" + dropped + ")"));
    REQUIRE_THAT(what, Contains("1 unexpected (encoder.block.9.extra.weight)"));
    REQUIRE_THAT(what, Contains(reshaped + " [7, 7]"));
}

TEST_CASE("bad model folders are clear errors", "[unit][checkpoint]") {
    const std::string model = fixture_model_dir();
    if (model.empty()) {
        return;
    }
    TempDir dir;
    SECTION("not a directory") { REQUIRE_THAT(load_error(dir.file("nope")), Contains("not a directory")); }
    SECTION("no weights") {
        fs::copy_file(model + "/config.json", dir.file("config.json"));
        REQUIRE_THAT(load_error(dir.path()), Contains("no model.safetensors"));
    }
    SECTION("malformed config.json") {
        write_bytes(dir.file("config.json"), "{\"d_model\": 64,");
        REQUIRE_THAT(load_error(dir.path()), Contains("config.json: malformed JSON"));
    }
    SECTION("config.json without a required key") {
        write_bytes(dir.file("config.json"), R"({"model_type": "t5", "vocab_size": 10})");
        REQUIRE_THAT(load_error(dir.path()), Contains("missing required key 'd_model'"));
    }
    SECTION("config.json of another architecture") {
        write_bytes(dir.file("config.json"), R"({"model_type": "bert"})");
        REQUIRE_THAT(load_error(dir.path()), Contains("is not a T5 model"));
    }
    SECTION("config.json with a wrongly typed value") {
        write_bytes(dir.file("config.json"), R"({"vocab_size": "many"})");
        REQUIRE_THAT(load_error(dir.path()), Contains("'vocab_size' must be an integer"));
    }
    SECTION("integer weights") {
        NamedTensors params = T5Model::load(model).named_parameters();
        params[0].second    = params[0].second.to(at::kLong);
        write_model(dir.path(), params);
        REQUIRE_THAT(load_error(dir.path()), Contains("non-float dtype"));
    }
    SECTION("shard index naming a tensor its file lacks") {
        fs::copy_file(model + "/config.json", dir.file("config.json"));
        write_safetensors(dir.file("a.safetensors"), { { "x", at::ones({ 1 }) } });
        write_bytes(dir.file("model.safetensors.index.json"), R"({"weight_map": {"y": "a.safetensors"}})");
        REQUIRE_THAT(load_error(dir.path()), Contains("which has no such tensor"));
    }
}
