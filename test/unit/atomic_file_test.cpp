#include "core/error.h"
#include "io/atomic_file.h"
#include "io/run_record.h"
#include "support/temp_dir.h"

#include <sys/wait.h>
#include <unistd.h>

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

TEST_CASE("temporary names end in .tmp-<pid>-<n>; only those of dead processes are removed as leftovers",
          "[unit][io]") {
    REQUIRE(temporary_suffix("state-4.safetensors.tmp-123-0") == 19);
    REQUIRE(temporary_suffix(temporary_name("a/b.json")) == 8);
    for (const char * not_ours : { "draft.tmp-31337.csv", "x.tmp-1-", "x.tmp--1", "x.tmp-1-2.png", "notes.txt" }) {
        INFO(not_ours);
        REQUIRE(temporary_suffix(not_ours) == std::string::npos);
    }
    TempDir     dir;
    const pid_t dead = ::fork();  // a process that is gone once reaped
    if (dead == 0) {
        ::_exit(0);
    }
    ::waitpid(dead, nullptr, 0);
    fs::create_directories(dir.file("checkpoint"));
    const std::string leftover = dir.file("checkpoint/state-2.safetensors.tmp-" + std::to_string(dead) + "-0");
    const std::string mine     = temporary_name(dir.file("metrics.csv"));  // this process is alive
    for (const std::string & f : { leftover, mine, dir.file("draft.tmp-31337.csv") }) {
        write_bytes(f, "x");
    }
    REQUIRE(remove_interrupted_writes(dir.path()) == 1);
    REQUIRE(!fs::exists(leftover));
    REQUIRE(fs::exists(mine));
    REQUIRE(fs::exists(dir.file("draft.tmp-31337.csv")));
}
