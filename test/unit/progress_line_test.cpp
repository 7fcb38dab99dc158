// The time left on the progress line, as a reader scans it.
#include "core/progress_line.h"

#include <catch2/catch.hpp>

using namespace cgm;

TEST_CASE("durations read as seconds, minutes and seconds, or hours and minutes", "[unit][progress]") {
    CHECK(duration_text(0) == "0s");
    CHECK(duration_text(44.6) == "45s");
    CHECK(duration_text(59.4) == "59s");
    CHECK(duration_text(60) == "1m00s");
    CHECK(duration_text(133) == "2m13s");
    CHECK(duration_text(3599) == "59m59s");
    CHECK(duration_text(3600) == "1h00m");
    CHECK(duration_text(3 * 3600 + 5 * 60 + 59) == "3h05m");
}
