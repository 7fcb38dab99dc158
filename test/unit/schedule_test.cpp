// Learning-rate schedules: lr_factor against transformers' get_{constant,linear,cosine}_schedule_
// with_warmup, written out here, at the first, warm-up boundary, middle and last steps.
#include "core/error.h"
#include "train/schedule.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace cgm;

namespace {

// transformers.optimization, lr_lambda(current_step) of each get_*_schedule_with_warmup
// (num_cycles = 0.5 for cosine).
double warmup_part(int64_t step, int64_t warmup) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
}

double hf_constant(int64_t step, int64_t warmup) {
    return step < warmup ? warmup_part(step, warmup) : 1.0;
}

double hf_linear(int64_t step, int64_t total, int64_t warmup) {
    if (step < warmup) {
        return warmup_part(step, warmup);
    }
    return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

double hf_cosine(int64_t step, int64_t total, int64_t warmup) {
    if (step < warmup) {
        return warmup_part(step, warmup);
    }
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
    const double cycles   = 0.5;
    return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * cycles * 2.0 * progress)));
}

}  // namespace

TEST_CASE("schedule names parse to their schedules", "[unit][schedule]") {
    REQUIRE(parse_schedule("constant") == Schedule::constant);
    REQUIRE(parse_schedule("linear") == Schedule::linear);
    REQUIRE(parse_schedule("cosine") == Schedule::cosine);
}

TEST_CASE("an unknown schedule name is refused with an error naming --schedule and the name", "[unit][schedule]") {
    for (const std::string name : { "cosine_with_restarts", "Linear", "" }) {
        INFO("name '" << name << "'");
        REQUIRE_THROWS_AS(parse_schedule(name), Error);
        REQUIRE_THROWS_WITH(parse_schedule(name), Catch::Matchers::StartsWith("--schedule: ") &&
                                                      Catch::Matchers::Contains("'" + name + "'"));
    }
}

TEST_CASE("warm-up: step k of w has factor k/w for every schedule, and 1 at the boundary", "[unit][schedule]") {
    const int64_t total = 20, warmup = 4;
    for (const Schedule s : { Schedule::constant, Schedule::linear, Schedule::cosine }) {
        INFO("schedule " << static_cast<int>(s));
        REQUIRE(lr_factor(s, 0, total, warmup) == 0.0);  // the first step learns nothing, as in transformers
        REQUIRE(lr_factor(s, 1, total, warmup) == Approx(0.25).epsilon(1e-12));
        REQUIRE(lr_factor(s, 2, total, warmup) == Approx(0.5).epsilon(1e-12));
        REQUIRE(lr_factor(s, 3, total, warmup) == Approx(0.75).epsilon(1e-12));
        REQUIRE(lr_factor(s, warmup, total, warmup) == Approx(1.0).epsilon(1e-12));
    }
}

TEST_CASE("constant schedule: 1 at every step without warm-up, 1 from the warm-up boundary on", "[unit][schedule]") {
    for (int64_t step = 0; step < 10; ++step) {
        REQUIRE(lr_factor(Schedule::constant, step, 10, 0) == 1.0);
        REQUIRE(lr_factor(Schedule::constant, step, 10, 3) == Approx(hf_constant(step, 3)).epsilon(1e-12));
    }
    REQUIRE(lr_factor(Schedule::constant, 9, 10, 3) == 1.0);
}

TEST_CASE("linear schedule: 1 at the start, 0.5 half way after warm-up, 1/(total-warmup) at the last step", "[unit][schedule]") {
    // Without warm-up: (total - step) / total.
    REQUIRE(lr_factor(Schedule::linear, 0, 10, 0) == Approx(1.0).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::linear, 5, 10, 0) == Approx(0.5).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::linear, 9, 10, 0) == Approx(0.1).epsilon(1e-12));
    // With warm-up 4 of 12: the decay runs over the remaining 8 steps.
    REQUIRE(lr_factor(Schedule::linear, 4, 12, 4) == Approx(1.0).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::linear, 4 + 8 / 2, 12, 4) == Approx(0.5).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::linear, 11, 12, 4) == Approx(1.0 / 8.0).epsilon(1e-12));
    // Past the end it stays at 0 (never negative).
    REQUIRE(lr_factor(Schedule::linear, 12, 12, 4) == 0.0);
    REQUIRE(lr_factor(Schedule::linear, 15, 12, 4) == 0.0);
    for (const int64_t warmup : { 0, 1, 3, 7 }) {
        for (int64_t step = 0; step < 12; ++step) {
            INFO("warmup " << warmup << " step " << step);
            REQUIRE(lr_factor(Schedule::linear, step, 12, warmup) == Approx(hf_linear(step, 12, warmup)).epsilon(1e-12));
        }
    }
}

TEST_CASE("cosine schedule: 1 at the start, 0.5 half way after warm-up, (1+cos(pi*(n-1)/n))/2 at the last step", "[unit][schedule]") {
    REQUIRE(lr_factor(Schedule::cosine, 0, 10, 0) == Approx(1.0).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 5, 10, 0) == Approx(0.5).epsilon(1e-12));
    // A quarter of the way: (1 + cos(pi/4)) / 2.
    REQUIRE(lr_factor(Schedule::cosine, 2, 8, 0) == Approx(0.5 * (1.0 + std::sqrt(0.5))).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 9, 10, 0) == Approx(0.5 * (1.0 + std::cos(M_PI * 0.9))).epsilon(1e-12));
    // With warm-up 4 of 12: the cosine runs over the remaining 8 steps.
    REQUIRE(lr_factor(Schedule::cosine, 4, 12, 4) == Approx(1.0).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 8, 12, 4) == Approx(0.5).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 11, 12, 4) == Approx(0.5 * (1.0 + std::cos(M_PI * 7.0 / 8.0))).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 12, 12, 4) == Approx(0.0).margin(1e-12));
    for (const int64_t warmup : { 0, 1, 3, 7 }) {
        for (int64_t step = 0; step < 12; ++step) {
            INFO("warmup " << warmup << " step " << step);
            REQUIRE(lr_factor(Schedule::cosine, step, 12, warmup) == Approx(hf_cosine(step, 12, warmup)).margin(1e-12));
        }
    }
}

TEST_CASE("a warm-up as long as the run, and a run of one step, give finite factors", "[unit][schedule]") {
    // total == warmup: every step is a warm-up step; the max(1, .) guards keep it finite.
    for (int64_t step = 0; step < 5; ++step) {
        REQUIRE(lr_factor(Schedule::cosine, step, 5, 5) == Approx(step / 5.0).epsilon(1e-12));
    }
    REQUIRE(lr_factor(Schedule::linear, 0, 1, 0) == Approx(1.0).epsilon(1e-12));
    REQUIRE(lr_factor(Schedule::cosine, 0, 1, 0) == Approx(1.0).epsilon(1e-12));
}
