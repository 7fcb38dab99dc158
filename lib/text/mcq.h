#pragma once
// Multiple-choice QA records: the project's normalized format, one JSON object a line:
// {"id", "domain", "question", "choices": [...], "label": index or null when unlabeled}.
#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct McqRecord {
    std::string              id;
    std::string              domain;
    std::string              question;
    std::vector<std::string> choices;
    int64_t                  label = -1;  // -1: unlabeled (e.g. an official test split)

    const std::string & answer() const { return choices.at(static_cast<size_t>(label)); }
};

// A record that could not be used, and why: "file:line: reason".
struct BadRecord {
    std::string where;
    std::string reason;
    std::string to_string() const { return where + ": " + reason; }
};

std::string mcq_to_json_line(const McqRecord & record);

// Writes records as jsonl, atomically.
void write_mcq_jsonl(const std::string & path, const std::vector<McqRecord> & records);

// Reads the normalized format; any bad line is an Error "file:line: reason".
std::vector<McqRecord> read_mcq_jsonl(const std::string & path);

}  // namespace cgm

namespace cgm {

// Records of several normalized files, at most `per_file_limit` (> 0) from each, in file order.
std::vector<McqRecord> read_mcq_files(const std::vector<std::string> & paths, int64_t per_file_limit = 0);

}  // namespace cgm
