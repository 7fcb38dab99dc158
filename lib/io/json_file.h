#pragma once
// JSON files with errors that name the file and the key.
#include <nlohmann/json_fwd.hpp>

#include <string>

namespace cgm {

// Parses a JSON file; a missing file or malformed JSON is an Error naming the file (and line).
nlohmann::json read_json_file(const std::string & path);

// Writes `value` pretty-printed (2 spaces), atomically.
void write_json_file(const std::string & path, const nlohmann::json & value);

// The message of a nlohmann::json exception without its "[json.exception.x.n] " prefix.
std::string json_error_text(const std::exception & e);

}  // namespace cgm
