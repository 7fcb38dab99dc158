#include "io/csv.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <fstream>
#include <sstream>

namespace cgm {

std::string csv_line(const CsvRow & fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) {
        const std::string & f = fields[i];
        if (i) {
            out += ',';
        }
        if (f.find_first_of(",\"\n\r") == std::string::npos) {
            out += f;
            continue;
        }
        out += '"';
        for (const char c : f) {
            out += c == '"' ? std::string("\"\"") : std::string(1, c);
        }
        out += '"';
    }
    return out;
}

void write_csv(const std::string & path, const CsvRow & header, const std::vector<CsvRow> & rows) {
    write_file_atomic(path, [&](std::ostream & out) {
        out << csv_line(header) << '\n';
        for (const auto & r : rows) {
            out << csv_line(r) << '\n';
        }
    });
}

std::vector<CsvRow> read_csv(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(path, "cannot open (missing or unreadable)");
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string   text = buffer.str();
    std::vector<CsvRow> rows;
    CsvRow              row;
    std::string         field;
    bool                quoted = false, field_started = false;
    int64_t             line   = 1;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                line += c == '\n';
                field += c;
            }
        } else if (c == '"' && !field_started) {
            quoted = field_started = true;
        } else if (c == ',') {
            row.push_back(field);
            field.clear();
            field_started = false;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
                ++i;
            }
            row.push_back(field);
            rows.push_back(row);
            row.clear();
            field.clear();
            field_started = false;
            ++line;
        } else {
            field += c;
            field_started = true;
        }
    }
    if (quoted) {
        fail(path + ":" + std::to_string(line), "unterminated quoted field");
    }
    if (field_started || !row.empty()) {
        row.push_back(field);
        rows.push_back(row);
    }
    return rows;
}

}  // namespace cgm
