#pragma once
// One exception type for every user-facing failure: the message is a single line that names the
// file (or flag) and the problem, ready to print as is.
#include <stdexcept>
#include <string>

namespace cgm {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws Error("<where>: <what>").
[[noreturn]] inline void fail(const std::string & where, const std::string & what) {
    throw Error(where + ": " + what);
}

}  // namespace cgm
