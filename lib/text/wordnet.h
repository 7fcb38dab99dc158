#pragma once
// A real multiple-choice dataset built from WordNet (Debian's wordnet-base), for demos and
// smoke tests: three domains with distractors of the same part of speech, deterministic for a
// seed.
//   definition: "Which word means: <gloss>?"          -> the noun
//   hypernym:   "A <noun> is a kind of what?"          -> its hypernym
//   antonym:    "What is the opposite of <adjective>?" -> its antonym
#include "text/mcq.h"

#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct WordnetOptions {
    std::string dir        = "/usr/share/wordnet";  // holds data.noun, data.adj
    uint64_t    seed       = 0;
    int64_t     per_domain = 1000;  // at most this many questions per domain
    int64_t     choices    = 4;
};

std::vector<McqRecord> generate_wordnet_mcq(const WordnetOptions & options);

}  // namespace cgm
