#include "cli/config_file.h"

#include "core/error.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

namespace cgm {
namespace {

// The programs a table may be named after: one file can drive a whole pipeline.
const std::vector<std::string> kPrograms = { "prepare-data",  "save-base", "finetune", "lora-finetune",
                                             "cgm-train",     "evaluate",  "benchmark" };

std::string dashed(std::string name) {
    std::replace(name.begin(), name.end(), '_', '-');
    return name;
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// TOML's integers and floats without its extras (underscores, hex, inf); no leading zeros, so that
// no flag parser takes 010 for octal. [+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, scanned by
// hand: std::regex recurses once per character and overflows the stack on a long token.
bool is_number(const std::string & s) {
    size_t     i      = 0;
    const auto sign   = [&] { i += i < s.size() && (s[i] == '+' || s[i] == '-'); };
    const auto digits = [&] {
        const size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
            ++i;
        }
        return i - start;
    };
    sign();
    const size_t integer = i;
    const size_t n       = digits();
    if (n == 0 || (n > 1 && s[integer] == '0')) {
        return false;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (digits() == 0) {
            return false;
        }
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        sign();
        if (digits() == 0) {
            return false;
        }
    }
    return i == s.size();
}

// A recursive-descent reader over the whole text, so that arrays may span lines.
class Reader {
  public:
    Reader(std::string path, std::string text) : path_(std::move(path)), text_(std::move(text)) {}

    // Calls on_table(name, line) for each `[name]` and on_entry(entry) for each `key = value`.
    template <typename OnTable, typename OnEntry> void read(OnTable on_table, OnEntry on_entry) {
        for (skip_blank_lines(); !at_end(); skip_blank_lines()) {
            if (peek() == '[') {
                on_table(table_header(), line_);
            } else {
                on_entry(entry());
            }
            end_of_line();
        }
    }

  private:
    [[noreturn]] void error(const std::string & what) const { fail(path_ + ":" + std::to_string(line_), what); }

    bool at_end() const { return pos_ >= text_.size(); }
    char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }

    std::string current_line() const {
        const size_t end = text_.find('\n', line_start_);
        std::string  line = text_.substr(line_start_, end == std::string::npos ? std::string::npos : end - line_start_);
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        return line;
    }

    void newline() {
        ++pos_;
        ++line_;
        line_start_ = pos_;
    }

    void skip_blanks() {
        while (peek() == ' ' || peek() == '\t') {
            ++pos_;
        }
    }

    void skip_comment() {
        while (!at_end() && peek() != '\n') {
            ++pos_;
        }
    }

    // Blanks, comments and line ends: between entries and between an array's items.
    void skip_blank_lines() {
        for (;;) {
            skip_blanks();
            if (peek() == '#') {
                skip_comment();
            } else if (peek() == '\r' && peek(1) == '\n') {
                ++pos_;
            } else if (peek() == '\n') {
                newline();
            } else {
                return;
            }
        }
    }

    void end_of_line() {
        skip_blanks();
        if (peek() == '#') {
            skip_comment();
        }
        if (peek() == '\r' && peek(1) == '\n') {
            ++pos_;
        }
        if (!at_end() && peek() != '\n') {
            error("unexpected '" + text_.substr(pos_, text_.find('\n', pos_) - pos_) + "' at the end of '" +
                  current_line() + "'");
        }
    }

    std::string name() {
        const size_t start = pos_;
        while (is_name_char(peek())) {
            ++pos_;
        }
        return text_.substr(start, pos_ - start);
    }

    std::string table_header() {
        ++pos_;  // '['
        if (peek() == '[') {
            error("arrays of tables ([[...]]) are not supported");
        }
        skip_blanks();
        const std::string table = name();
        skip_blanks();
        if (table.empty() || peek() != ']') {
            error("expected '[program]', not '" + current_line() + "'");
        }
        ++pos_;
        return table;
    }

    ConfigEntry entry() {
        ConfigEntry e;
        e.line = line_;
        e.key  = name();
        skip_blanks();
        if (e.key.empty() || peek() != '=') {
            error("expected 'key = value' (keys are flag names), not '" + current_line() + "'");
        }
        e.flag = dashed(e.key);
        ++pos_;
        skip_blanks();
        if (peek() == '[') {
            e.array = true;
            array_items(e.values);
        } else {
            e.values.push_back(scalar());
        }
        return e;
    }

    void array_items(std::vector<ConfigValue> & values) {
        ++pos_;  // '['
        for (skip_blank_lines(); peek() != ']'; skip_blank_lines()) {
            if (peek() == '[') {
                error("arrays inside arrays are not supported");
            }
            values.push_back(scalar());
            skip_blank_lines();
            if (peek() == ',') {
                ++pos_;
            } else if (peek() != ']') {
                error("expected ',' or ']' in the array on '" + current_line() + "'");
            }
        }
        ++pos_;
    }

    ConfigValue scalar() {
        if (peek() == '"' || peek() == '\'') {
            if (peek(1) == peek() && peek(2) == peek()) {
                error("multi-line strings are not supported");
            }
            return { ConfigValue::Kind::string, quoted_string() };
        }
        const size_t start = pos_;
        while (!at_end() && std::string(" \t\r\n,]#").find(peek()) == std::string::npos) {
            ++pos_;
        }
        const std::string token = text_.substr(start, pos_ - start);
        if (token == "true" || token == "false") {
            return { ConfigValue::Kind::boolean, token };
        }
        if (is_number(token)) {
            return { ConfigValue::Kind::number, token };
        }
        error(token.empty() ? "expected a value on '" + current_line() + "'"
                            : "'" + token + "' is not a value (strings need quotes)");
    }

    // "..." with the common escapes, or '...' taken literally.
    std::string quoted_string() {
        const char  quote = text_[pos_++];
        std::string out;
        for (;;) {
            if (at_end() || peek() == '\n') {
                error("string without its closing quote on '" + current_line() + "'");
            }
            const char c = text_[pos_++];
            if (c == quote) {
                return out;
            }
            if (c != '\\' || quote == '\'') {
                out += c;
                continue;
            }
            static const std::map<char, char> escapes = { { '"', '"' },  { '\\', '\\' }, { 'n', '\n' },
                                                          { 't', '\t' }, { 'r', '\r' },  { 'b', '\b' },
                                                          { 'f', '\f' } };
            const auto it = escapes.find(peek());
            if (it == escapes.end()) {
                error(std::string("unsupported escape '\\") + peek() + "' (write '\\\\' for a backslash)");
            }
            out += it->second;
            ++pos_;
        }
    }

    std::string path_;
    std::string text_;
    size_t      pos_        = 0;
    size_t      line_start_ = 0;
    int         line_       = 1;
};

}  // namespace

std::vector<ConfigEntry> read_config_file(const std::string & path, const std::string & program) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(path, "cannot open (missing or unreadable)");
    }
    std::stringstream text;
    text << in.rdbuf();
    const auto where = [&](int line) { return path + ":" + std::to_string(line); };

    // Entries by table ("" for the top level) and flag; table headers by name, with their line.
    std::map<std::string, std::map<std::string, ConfigEntry>> tables;
    std::map<std::string, int>                                header_lines;
    std::string                                               table;
    Reader(path, text.str()).read(
        [&](const std::string & name, int line) {
            table = dashed(name);
            if (std::find(kPrograms.begin(), kPrograms.end(), table) == kPrograms.end() && table != program) {
                std::string names;
                for (const std::string & p : kPrograms) {
                    names += (names.empty() ? "" : ", ") + p;
                }
                fail(where(line), "unknown table [" + name + "] (tables are program names: " + names + ")");
            }
            const auto [first, fresh] = header_lines.emplace(table, line);
            if (!fresh) {
                fail(where(line), "table [" + name + "] appears twice (first on line " + std::to_string(first->second) + ")");
            }
        },
        [&](ConfigEntry e) {
            const auto [first, fresh] = tables[table].emplace(e.flag, e);
            if (!fresh) {
                fail(where(e.line), "'" + e.key + "' given twice (first on line " + std::to_string(first->second.line) + ")");
            }
        });

    std::map<std::string, ConfigEntry> chosen = tables[""];
    for (const auto & [flag, e] : tables[program]) {
        chosen[flag] = e;
    }
    std::vector<ConfigEntry> out;
    for (const auto & kv : chosen) {
        out.push_back(kv.second);
    }
    std::sort(out.begin(), out.end(), [](const ConfigEntry & a, const ConfigEntry & b) { return a.line < b.line; });
    return out;
}

}  // namespace cgm
