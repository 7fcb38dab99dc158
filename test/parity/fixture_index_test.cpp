// The fixture set itself: every fixture the index lists is complete and self-consistent (its
// manifest, files and tensors), and each is reported as checked or, with the reason, skipped.
#include "io/json_file.h"
#include "support/fixtures.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

using namespace cgm;
using namespace cgm::test;

namespace {

c10::ScalarType manifest_dtype(const std::string & name) {
    if (name == "F32") {
        return at::kFloat;
    }
    if (name == "I64") {
        return at::kLong;
    }
    if (name == "U8") {
        return at::kByte;
    }
    FAIL("manifest dtype " << name << " is not one the fixture format uses (F32, I64, U8)");
    return at::kFloat;
}

}  // namespace

TEST_CASE("Fixture index: every fixture is complete and is either checked or reported as skipped", "[parity]") {
    const nlohmann::json index = fixture_index();
    REQUIRE(index.is_object());
    REQUIRE(!index.empty());
    int skipped = 0;
    for (const auto & [name, entry] : index.items()) {
        INFO("fixture " << name);
        const std::string    kind     = entry.at("kind").get<std::string>();
        const std::string    dir      = fixtures_dir() + "/" + name;
        const nlohmann::json manifest = read_json_file(dir + "/manifest.json");
        REQUIRE(manifest.at("name") == name);
        REQUIRE(manifest.at("kind") == kind);
        for (const auto & file : manifest.value("files", nlohmann::json::array())) {
            INFO("file " << file.get<std::string>());
            REQUIRE(std::filesystem::is_regular_file(dir + "/" + file.get<std::string>()));
        }
        // The tensor file holds exactly the manifest's tensors, in its order, dtypes and shapes.
        const SafetensorsReader tensors(dir + "/" + manifest.value("tensor_file", "tensors.safetensors"));
        const auto &            listed = manifest.at("tensors");
        REQUIRE(tensors.names().size() == listed.size());
        for (size_t i = 0; i < listed.size(); ++i) {
            const std::string t = listed[i].at("name").get<std::string>();
            INFO("tensor " << t);
            REQUIRE(tensors.names()[i] == t);
            REQUIRE(tensors.entry(t).dtype == manifest_dtype(listed[i].at("dtype").get<std::string>()));
            REQUIRE(tensors.entry(t).shape == listed[i].at("shape").get<std::vector<int64_t>>());
        }
        const std::string why = skip_reason(kind, manifest, dir);
        if (why.empty()) {
            std::printf("parity: checking %-20s (kind %s)\n", name.c_str(), kind.c_str());
        } else {
            std::printf("parity: SKIPPING %-20s (%s)\n", name.c_str(), why.c_str());
            ++skipped;
        }
    }
    std::printf("parity: %d of %zu fixtures skipped (fixtures from %s)\n", skipped, index.size(), fixtures_dir().c_str());
    std::fflush(stdout);
}
