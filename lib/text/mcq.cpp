#include "text/mcq.h"

#include "core/error.h"
#include "io/json_file.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace cgm {

std::string mcq_to_json_line(const McqRecord & r) {
    const nlohmann::ordered_json j = { { "id", r.id },
                                       { "domain", r.domain },
                                       { "question", r.question },
                                       { "choices", r.choices },
                                       { "label", r.label >= 0 ? nlohmann::ordered_json(r.label) : nullptr } };
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_mcq_jsonl(const std::string & path, const std::vector<McqRecord> & records) {
    write_file_atomic(path, [&](std::ostream & out) {
        for (const auto & r : records) {
            out << mcq_to_json_line(r) << '\n';
        }
    });
}

std::vector<McqRecord> read_mcq_jsonl(const std::string & path) {
    std::ifstream in(path);
    if (!in) {
        fail(path, "cannot open (missing or unreadable)");
    }
    std::vector<McqRecord> out;
    std::string            line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            continue;
        }
        const std::string where = path + ":" + std::to_string(n);
        nlohmann::json    j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception &) {
            fail(where, "malformed JSON");
        }
        McqRecord      r;
        nlohmann::json label;
        try {
            r.id       = j.at("id").get<std::string>();
            r.domain   = j.at("domain").get<std::string>();
            r.question = j.at("question").get<std::string>();
            r.choices  = j.at("choices").get<std::vector<std::string>>();
            label      = j.at("label");
        } catch (const nlohmann::json::exception & e) {
            fail(where, std::string("not an MCQ record: ") + json_error_text(e));
        }
        // A float label would be converted with undefined behaviour past int64's range.
        const auto index = json_exact_int(label);
        if (!label.is_null() && !index) {
            fail(where, "label must be an integer index or null, got " + label.dump());
        }
        r.label = label.is_null() ? -1 : *index;
        if (r.choices.size() < 2) {
            fail(where, "needs at least 2 choices");
        }
        if (r.label >= static_cast<int64_t>(r.choices.size()) || r.label < -1) {
            fail(where, "label " + std::to_string(r.label) + " out of range for " + std::to_string(r.choices.size()) +
                            " choices");
        }
        out.push_back(std::move(r));
    }
    if (out.empty()) {
        fail(path, "no records");
    }
    return out;
}

}  // namespace cgm

namespace cgm {

std::vector<McqRecord> read_mcq_files(const std::vector<std::string> & paths, int64_t per_file_limit) {
    std::vector<McqRecord> out;
    for (const auto & path : paths) {
        std::vector<McqRecord> records = read_mcq_jsonl(path);
        if (per_file_limit > 0 && static_cast<int64_t>(records.size()) > per_file_limit) {
            records.resize(static_cast<size_t>(per_file_limit));
        }
        out.insert(out.end(), records.begin(), records.end());
    }
    return out;
}

}  // namespace cgm
