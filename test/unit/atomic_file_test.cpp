#include "core/error.h"
#include "io/atomic_file.h"
#include "support/temp_dir.h"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace cgm;
using namespace cgm::test;
namespace fs = std::filesystem;

TEST_CASE("atomic writes leave the old file when writing fails", "[unit][io]") {
    TempDir dir;
    write_text_atomic(dir.file("a.txt"), "old");
    REQUIRE_THROWS(write_file_atomic(dir.file("a.txt"), [](std::ostream & out) {
        out << "half";
        throw Error("interrupted");
    }));
    REQUIRE(read_bytes(dir.file("a.txt")) == "old");
    REQUIRE(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}) == 1);  // no temp left
}

TEST_CASE("staged directories appear only on commit and replace earlier outputs", "[unit][io]") {
    TempDir           dir;
    const std::string out = dir.file("out");
    {
        StagedDirectory staged(out);
        write_text_atomic(staged.path() + "/config.json", "{}");
        REQUIRE(!fs::exists(out));
    }  // not committed: nothing remains
    REQUIRE(!fs::exists(out));
    REQUIRE(fs::is_empty(dir.path()));

    for (const char * content : { "1", "2" }) {
        StagedDirectory staged(out);
        write_text_atomic(staged.path() + "/config.json", content);
        staged.commit();
    }
    REQUIRE(read_bytes(out + "/config.json") == "2");
    REQUIRE(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}) == 1);
}

TEST_CASE("staged directories refuse to replace a folder that is not an earlier output", "[unit][io]") {
    TempDir dir;
    write_bytes(dir.file("precious.txt"), "keep me");
    REQUIRE_THROWS_WITH(StagedDirectory(dir.path()), Catch::Matchers::Contains("refusing to replace"));
    REQUIRE(read_bytes(dir.file("precious.txt")) == "keep me");
}
