// The peak resident memory of one part of a run: a block touched after a reset raises the peak by
// its size; once freed, a new reset brings the peak back down.
#include "perf/peak_memory.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>

using namespace cgm;

TEST_CASE("peak memory rises by a touched block and falls back after it is freed and the peak reset", "[unit][perf]") {
    constexpr int64_t kBlock = 256LL << 20;
    if (!reset_peak_memory()) {
        WARN("the kernel refuses /proc/self/clear_refs: peak memory cannot be reset here");
        return;
    }
    const int64_t before = peak_memory_bytes();
    REQUIRE(before > 0);
    {
        const std::unique_ptr<char[]> block(new char[kBlock]);
        std::memset(block.get(), 1, kBlock);  // resident only once touched
        REQUIRE(peak_memory_bytes() >= before + kBlock * 9 / 10);
    }
    REQUIRE(reset_peak_memory());
    REQUIRE(peak_memory_bytes() < before + kBlock / 4);
}
