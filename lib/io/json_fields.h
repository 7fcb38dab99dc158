#pragma once
// Typed fields of a JSON object (a config.json) with errors that name the file and the key.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace cgm {

// The value when it is a JSON integer that fits in int64_t; nothing for any other value (a float,
// whose conversion could overflow, or an unsigned integer above INT64_MAX).
std::optional<int64_t> json_exact_int(const nlohmann::json & v);

// An integer >= min_value; absent or null: fallback, or an Error when required.
int64_t json_int(const nlohmann::json & j, const char * key, const std::string & source, bool required, int64_t fallback,
                 int64_t min_value);
// A number; absent or null: fallback.
double json_double(const nlohmann::json & j, const char * key, const std::string & source, double fallback);
// true or false; absent or null: fallback.
bool json_bool(const nlohmann::json & j, const char * key, const std::string & source, bool fallback);
// A string; absent or null: fallback.
std::string json_string(const nlohmann::json & j, const char * key, const std::string & source,
                        const std::string & fallback);

}  // namespace cgm
