#include "text/dataset_readers.h"

#include "core/error.h"
#include "io/json_fields.h"
#include "io/json_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

namespace fs = std::filesystem;

namespace cgm {
namespace {

// Collects records and bad records, stopping at the first bad one in strict mode.
class Collector {
  public:
    Collector(const ReadOptions & options, std::string default_domain) : options_(options) {
        domain_ = options.domain.empty() ? std::move(default_domain) : options.domain;
    }

    void bad(const std::string & where, const std::string & reason) {
        if (options_.strict) {
            fail(where, reason);
        }
        result.bad.push_back({ where, reason });
    }

    void add(McqRecord r, const std::string & where) {
        if (r.domain.empty()) {
            r.domain = domain_;
        }
        if (r.id.empty()) {
            r.id = r.domain + "-" + std::to_string(result.records.size() + result.bad.size());
        }
        if (r.question.empty()) {
            return bad(where, "empty question");
        }
        if (r.choices.size() < 2) {
            return bad(where, "needs at least 2 choices, has " + std::to_string(r.choices.size()));
        }
        if (r.label < -1 || r.label >= static_cast<int64_t>(r.choices.size())) {
            return bad(where, "label " + std::to_string(r.label) + " out of range for " +
                                  std::to_string(r.choices.size()) + " choices");
        }
        result.records.push_back(std::move(r));
    }

    ReadResult result;

  private:
    const ReadOptions & options_;
    std::string         domain_;
};

// Calls f(line_number, line) for every non-blank line.
void for_each_line(const std::string & path, const std::function<void(int64_t, const std::string &)> & f) {
    std::ifstream in(path);
    if (!in) {
        fail(path, "cannot open (missing or unreadable)");
    }
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.find_first_not_of(" \t") != std::string::npos) {
            f(n, line);
        }
    }
}

// Reads a jsonl file, handing each parsed object to `convert`; malformed lines are bad records.
ReadResult read_jsonl(const std::string & path, const ReadOptions & options, const std::string & format,
                      const std::function<McqRecord(const nlohmann::json &)> & convert) {
    Collector c(options, format);
    for_each_line(path, [&](int64_t n, const std::string & line) {
        const std::string where = path + ":" + std::to_string(n);
        nlohmann::json    j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception &) {
            return c.bad(where, "malformed JSON");
        }
        try {
            c.add(convert(j), where);
        } catch (const nlohmann::json::exception & e) {
            c.bad(where, std::string("missing or mistyped field: ") + json_error_text(e));
        } catch (const std::exception & e) {  // a bad answer key or label
            c.bad(where, e.what());
        }
    });
    if (c.result.records.empty() && c.result.bad.empty()) {
        fail(path, "no records (empty file)");
    }
    c.result.split = split_from_file_name(path);
    return std::move(c.result);
}

int64_t letter_index(const std::string & letter, const std::vector<std::string> & letters) {
    const auto it = std::find(letters.begin(), letters.end(), letter);
    if (it == letters.end()) {
        throw Error("answer '" + letter + "' is not one of the choice labels");
    }
    return it - letters.begin();
}

std::string trim(const std::string & s) {
    const size_t b = s.find_first_not_of(" \t");
    const size_t e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

}  // namespace

std::string split_from_file_name(const std::string & path) {
    const std::string name = lower(fs::path(path).filename().string());
    if (name.find("train") != std::string::npos) {
        return "train";
    }
    if (name.find("dev") != std::string::npos || name.find("val") != std::string::npos) {
        return "val";
    }
    if (name.find("test") != std::string::npos) {
        return "test";
    }
    return "";
}

ReadResult read_commonsenseqa(const std::string & path, const ReadOptions & options) {
    return read_jsonl(path, options, "commonsenseqa", [](const nlohmann::json & j) {
        McqRecord                r;
        std::vector<std::string> letters;
        r.id       = j.value("id", "");
        r.question = j.at("question").at("stem").get<std::string>();
        for (const auto & choice : j.at("question").at("choices")) {
            letters.push_back(choice.at("label").get<std::string>());
            r.choices.push_back(choice.at("text").get<std::string>());
        }
        if (j.contains("answerKey") && !j["answerKey"].is_null()) {
            r.label = letter_index(j["answerKey"].get<std::string>(), letters);
        }
        return r;
    });
}

ReadResult read_medqa(const std::string & path, const ReadOptions & options) {
    return read_jsonl(path, options, "medqa", [](const nlohmann::json & j) {
        McqRecord                r;
        std::vector<std::string> letters;
        r.question = j.at("question").get<std::string>();
        for (const auto & [letter, text] : j.at("options").items()) {  // nlohmann keeps keys sorted: A, B, ...
            letters.push_back(letter);
            r.choices.push_back(text.get<std::string>());
        }
        if (j.contains("answer_idx") && !j["answer_idx"].is_null()) {
            r.label = letter_index(j["answer_idx"].get<std::string>(), letters);
        }
        return r;
    });
}

std::vector<ReadResult> read_scienceqa(const std::string & path, const ReadOptions & options) {
    const nlohmann::json problems = read_json_file(path);
    if (!problems.is_object()) {
        fail(path, "expected an object {pid: problem}");
    }
    // The split of each pid: the problem's own "split", else pid_splits.json beside it.
    std::map<std::string, std::string> split_of;
    const fs::path                     splits_path = fs::path(path).parent_path() / "pid_splits.json";
    if (fs::exists(splits_path)) {
        const nlohmann::json splits = read_json_file(splits_path.string());
        if (!splits.is_object()) {
            fail(splits_path.string(), "expected an object {split: [pid, ...]}");
        }
        for (const char * s : { "train", "val", "test" }) {
            if (splits.contains(s) && !splits[s].is_array()) {
                fail(splits_path.string(), std::string("'") + s + "' is not a list of pids");
            }
            if (splits.contains(s)) {
                for (const auto & pid : splits[s]) {
                    split_of[pid.is_string() ? pid.get<std::string>() : pid.dump()] = s;
                }
            }
        }
    }
    std::map<std::string, Collector> by_split;
    for (const auto & [pid, p] : problems.items()) {
        const std::string where = path + ":" + pid;
        std::string       split = p.is_object() && p.contains("split") && p["split"].is_string() ? p["split"].get<std::string>()
                                                                                                : split_of[pid];
        if (split != "train" && split != "val" && split != "test") {
            split = "";
        }
        Collector & c = by_split.try_emplace(split, options, "scienceqa").first->second;
        try {
            if (!options.include_images && p.contains("image") && !p["image"].is_null()) {
                ++c.result.skipped_images;
                continue;
            }
            McqRecord r;
            r.id       = pid;
            r.question = p.at("question").get<std::string>();
            r.choices  = p.at("choices").get<std::vector<std::string>>();
            if (p.contains("answer") && !p["answer"].is_null()) {
                const auto answer = json_exact_int(p["answer"]);
                if (!answer) {
                    c.bad(where, "answer must be an integer index, got " + p["answer"].dump());
                    continue;
                }
                r.label = *answer;
            }
            c.add(std::move(r), where);
        } catch (const nlohmann::json::exception & e) {
            c.bad(where, std::string("missing or mistyped field: ") + json_error_text(e));
        }
    }
    if (by_split.empty()) {
        fail(path, "no problems");
    }
    std::vector<ReadResult> out;
    for (auto & [split, c] : by_split) {
        c.result.split = split;
        out.push_back(std::move(c.result));
    }
    return out;
}

ReadResult read_unifiedqa(const std::string & path, const ReadOptions & options) {
    Collector c(options, "unifiedqa");
    for_each_line(path, [&](int64_t n, const std::string & line) {
        const std::string where = path + ":" + std::to_string(n);
        const size_t      tab   = line.find('\t');
        if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos) {
            return c.bad(where, "expected 2 tab-separated columns (input, answer)");
        }
        const std::string input = line.substr(0, tab), answer = trim(line.substr(tab + 1));
        const size_t      sep   = input.find("\\n");  // a literal backslash-n separates the question
        if (sep == std::string::npos) {
            return c.bad(where, "no ' \\n ' between question and choices: not a multiple-choice input");
        }
        McqRecord r;
        r.question         = trim(input.substr(0, sep));
        std::string rest   = input.substr(sep + 2);
        const size_t after = rest.find("\\n");  // a context may follow the choices
        if (after != std::string::npos) {
            rest = rest.substr(0, after);
        }
        size_t pos = rest.find("(a) ");
        for (char letter = 'a'; pos != std::string::npos; ++letter) {
            const size_t      start = pos + 4;
            const std::string next  = std::string("(") + static_cast<char>(letter + 1) + ") ";
            pos                     = rest.find(next, start);
            r.choices.push_back(trim(rest.substr(start, pos == std::string::npos ? std::string::npos : pos - start)));
        }
        for (size_t i = 0; i < r.choices.size(); ++i) {
            if (lower(r.choices[i]) == lower(answer)) {
                r.label = static_cast<int64_t>(i);
                break;
            }
        }
        if (r.label < 0) {
            return c.bad(where, "answer '" + answer + "' is not one of the choices");
        }
        c.add(std::move(r), where);
    });
    if (c.result.records.empty() && c.result.bad.empty()) {
        fail(path, "no records (empty file)");
    }
    c.result.split = split_from_file_name(path);
    return std::move(c.result);
}

ReadResult read_mcq_records(const std::string & path, const ReadOptions & options) {
    return read_jsonl(path, options, "mcq", [&](const nlohmann::json & j) {
        McqRecord r;
        r.id       = j.contains("id") && !j["id"].is_null() ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump()) : "";
        r.domain   = options.domain.empty() ? j.value("domain", "") : options.domain;
        r.question = j.at("question").get<std::string>();
        r.choices  = j.at("choices").get<std::vector<std::string>>();
        const auto & label = j.at("label");
        // The seed's files store the label as a string index ("0").
        if (label.is_string()) {
            const std::string text = label.get<std::string>();
            if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
                throw Error("label '" + text + "' is not an index");
            }
            r.label = std::stoll(text);
        } else {
            const auto index = json_exact_int(label);
            if (!label.is_null() && !index) {
                throw Error("label must be an integer index or null, got " + label.dump());
            }
            r.label = label.is_null() ? -1 : *index;
        }
        return r;
    });
}

}  // namespace cgm
