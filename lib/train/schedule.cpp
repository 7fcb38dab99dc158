#include "train/schedule.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>

namespace cgm {

Schedule parse_schedule(const std::string & name) {
    if (name == "constant") {
        return Schedule::constant;
    }
    if (name == "linear") {
        return Schedule::linear;
    }
    if (name == "cosine") {
        return Schedule::cosine;
    }
    fail("--schedule", "unknown schedule '" + name + "' (expected constant, linear or cosine)");
}

double lr_factor(Schedule schedule, int64_t step, int64_t total, int64_t warmup) {
    if (step < warmup) {
        return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
    }
    const double progress =
        static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
    switch (schedule) {
        case Schedule::constant: return 1.0;
        case Schedule::linear: return std::max(0.0, 1.0 - progress);
        case Schedule::cosine: return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
    }
    return 1.0;
}

}  // namespace cgm
