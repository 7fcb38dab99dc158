#include "core/numbers.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace cgm {

std::optional<double> parse_number(const std::string & text) {
    size_t used  = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception &) {
        return std::nullopt;  // no number at all, or out of range
    }
    if (used != text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

std::string fixed(double value, int digits) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", digits, value);
    return text;
}

}  // namespace cgm
