#include "io/json_file.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace cgm {

nlohmann::json read_json_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(path, "cannot open (missing or unreadable)");
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    try {
        return nlohmann::json::parse(buffer.str());
    } catch (const nlohmann::json::parse_error & e) {
        // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
        std::string what = e.what();
        const auto pos = what.find("] ");
        fail(path, "malformed JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
    }
}

void write_json_file(const std::string & path, const nlohmann::json & value) {
    write_text_atomic(path, value.dump(2) + "\n");
}

}  // namespace cgm
