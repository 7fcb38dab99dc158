#pragma once
// SHA-256 of a file, so that a run records exactly which data it saw (FIPS 180-4).
#include <string>

namespace cgm {

// Lower-case hex digest of the file's bytes; an Error naming the file when it cannot be read.
std::string sha256_file(const std::string & path);

// Lower-case hex digest of `bytes`.
std::string sha256_hex(const std::string & bytes);

}  // namespace cgm
