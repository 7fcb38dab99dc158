#pragma once
// Answer metrics: exact match of the normalized answer (accuracy), the seed's substring test,
// and SQuAD 1.1 EM/F1 (lowercase, no punctuation, no articles, single spaces).
#include <map>
#include <string>

namespace cgm {

std::string normalize_answer(const std::string & text);  // SQuAD's normalize_answer
bool        exact_match(const std::string & predicted, const std::string & target);
double      token_f1(const std::string & predicted, const std::string & target);
bool        substring_match(const std::string & predicted, const std::string & target);  // target in predicted

struct AnswerScores {
    int64_t count     = 0;
    double  correct   = 0;  // exact match after normalization
    double  substring = 0;
    double  f1        = 0;

    void   add(const std::string & predicted, const std::string & target);
    double accuracy() const { return count ? correct / static_cast<double>(count) : 0.0; }
    double substring_accuracy() const { return count ? substring / static_cast<double>(count) : 0.0; }
    double mean_f1() const { return count ? f1 / static_cast<double>(count) : 0.0; }
};

}  // namespace cgm
