#pragma once
// Numbers typed by users (flag values): the whole text must be one finite number, so "0.5x" or
// "" is refused rather than read as 0.5 or 0.
#include <optional>
#include <string>

namespace cgm {

std::optional<double> parse_number(const std::string & text);

// value with `digits` decimals ("%.*f"): figures in tables and logs.
std::string fixed(double value, int digits);

}  // namespace cgm
