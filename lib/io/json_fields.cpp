#include "io/json_fields.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

namespace cgm {

namespace {

bool absent(const nlohmann::json & j, const char * key) {
    return !j.contains(key) || j[key].is_null();
}

}  // namespace

std::optional<int64_t> json_exact_int(const nlohmann::json & v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<uint64_t>();
        return u <= static_cast<uint64_t>(INT64_MAX) ? std::optional<int64_t>(static_cast<int64_t>(u)) : std::nullopt;
    }
    return v.is_number_integer() ? std::optional<int64_t>(v.get<int64_t>()) : std::nullopt;
}

int64_t json_int(const nlohmann::json & j, const char * key, const std::string & source, bool required, int64_t fallback,
                 int64_t min_value) {
    if (absent(j, key)) {
        if (required) {
            fail(source, std::string("missing required key '") + key + "'");
        }
        return fallback;
    }
    const std::optional<int64_t> exact = json_exact_int(j[key]);
    if (!exact) {
        fail(source, std::string("'") + key + "' must be an integer, got " + j[key].dump());
    }
    const int64_t v = *exact;
    if (v < min_value) {
        fail(source, std::string("'") + key + "' must be >= " + std::to_string(min_value) + ", got " + std::to_string(v));
    }
    return v;
}

double json_double(const nlohmann::json & j, const char * key, const std::string & source, double fallback) {
    if (absent(j, key)) {
        return fallback;
    }
    if (!j[key].is_number()) {
        fail(source, std::string("'") + key + "' must be a number, got " + j[key].dump());
    }
    return j[key].get<double>();
}

bool json_bool(const nlohmann::json & j, const char * key, const std::string & source, bool fallback) {
    if (absent(j, key)) {
        return fallback;
    }
    if (!j[key].is_boolean()) {
        fail(source, std::string("'") + key + "' must be true or false, got " + j[key].dump());
    }
    return j[key].get<bool>();
}

std::string json_string(const nlohmann::json & j, const char * key, const std::string & source,
                        const std::string & fallback) {
    if (absent(j, key)) {
        return fallback;
    }
    if (!j[key].is_string()) {
        fail(source, std::string("'") + key + "' must be a string, got " + j[key].dump());
    }
    return j[key].get<std::string>();
}

}  // namespace cgm
