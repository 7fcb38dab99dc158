#pragma once
// Learning-rate schedules as in transformers' get_*_schedule_with_warmup: the factor for
// optimizer step `step` (0-based) of `total`, after `warmup` linear warm-up steps.
#include <cstdint>
#include <string>

namespace cgm {

enum class Schedule { constant, linear, cosine };
Schedule parse_schedule(const std::string & name);  // "constant" | "linear" | "cosine"

double lr_factor(Schedule schedule, int64_t step, int64_t total, int64_t warmup);

}  // namespace cgm
