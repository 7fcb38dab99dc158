#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <vector>

namespace cgm {
namespace {

std::vector<std::string> tokens(const std::string & normalized) {
    std::istringstream       in(normalized);
    std::vector<std::string> out;
    for (std::string t; in >> t;) {
        out.push_back(t);
    }
    return out;
}

}  // namespace

std::string normalize_answer(const std::string & text) {
    // lower, remove punctuation, remove articles, collapse whitespace (in SQuAD's order)
    std::string s;
    for (const char c : text) {
        if (!std::ispunct(static_cast<unsigned char>(c))) {
            s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    std::string out;
    for (const auto & t : tokens(s)) {
        if (t != "a" && t != "an" && t != "the") {
            out += (out.empty() ? "" : " ") + t;
        }
    }
    return out;
}

bool exact_match(const std::string & predicted, const std::string & target) {
    return normalize_answer(predicted) == normalize_answer(target);
}

double token_f1(const std::string & predicted, const std::string & target) {
    const auto p = tokens(normalize_answer(predicted));
    const auto t = tokens(normalize_answer(target));
    if (p.empty() || t.empty()) {
        return p == t ? 1.0 : 0.0;
    }
    std::map<std::string, int> remaining;
    for (const auto & w : t) {
        ++remaining[w];
    }
    int common = 0;
    for (const auto & w : p) {
        if (remaining[w]-- > 0) {
            ++common;
        }
    }
    if (common == 0) {
        return 0.0;
    }
    const double precision = static_cast<double>(common) / static_cast<double>(p.size());
    const double recall    = static_cast<double>(common) / static_cast<double>(t.size());
    return 2 * precision * recall / (precision + recall);
}

bool substring_match(const std::string & predicted, const std::string & target) {
    return predicted.find(target) != std::string::npos;
}

void AnswerScores::add(const std::string & predicted, const std::string & target) {
    ++count;
    correct += exact_match(predicted, target) ? 1 : 0;
    substring += substring_match(predicted, target) ? 1 : 0;
    f1 += token_f1(predicted, target);
}

}  // namespace cgm
