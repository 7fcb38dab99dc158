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
    } catch (const nlohmann::json::exception & e) {  // out_of_range too: a number beyond double's range
        fail(path, "malformed JSON: " + json_error_text(e));
    }
}

std::string json_error_text(const std::exception & e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    const std::string what = e.what();
    const auto        pos  = what.find("] ");
    return what.rfind("[json.exception.", 0) == 0 && pos != std::string::npos ? what.substr(pos + 2) : what;
}

void write_json_file(const std::string & path, const nlohmann::json & value) {
    write_text_atomic(path, value.dump(2) + "\n");
}

}  // namespace cgm
