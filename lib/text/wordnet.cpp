#include "text/wordnet.h"

#include "core/error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

struct Pointer {
    std::string symbol;  // "@" hypernym, "!" antonym, ...
    std::string target;  // synset offset
    int         source_word = 0;  // 0: the whole synset; else 1-based word numbers
    int         target_word = 0;
};

struct Synset {
    std::vector<std::string> words;
    std::vector<Pointer>     pointers;
    std::string              definition;  // the gloss up to its first example
};

// "galore(ip)" -> "galore", "ice_cream" -> "ice cream"
std::string clean_word(std::string w) {
    const size_t paren = w.find('(');
    if (paren != std::string::npos) {
        w.resize(paren);
    }
    std::replace(w.begin(), w.end(), '_', ' ');
    return w;
}

// Plain lowercase words of at most two parts: easy targets for a small tokenizer and model.
bool simple_word(const std::string & w) {
    if (w.empty() || std::count(w.begin(), w.end(), ' ') > 1) {
        return false;
    }
    return std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == ' ' || c == '-'; });
}

std::map<std::string, Synset> read_data_file(const std::string & path) {
    std::ifstream in(path);
    if (!in) {
        fail(path, "cannot open (install Debian's wordnet-base, or pass --input DIR with WordNet's data.* files)");
    }
    std::map<std::string, Synset> synsets;
    std::string                   line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line[0] == ' ') {
            continue;  // license header
        }
        const size_t bar = line.find(" | ");
        if (bar == std::string::npos) {
            fail(path + ":" + std::to_string(n), "no gloss separator '|'");
        }
        std::istringstream fields(line.substr(0, bar));
        std::string        offset, lex_file, type, count;
        fields >> offset >> lex_file >> type >> count;
        Synset s;
        try {
            const int words = std::stoi(count, nullptr, 16);
            for (int i = 0; i < words; ++i) {
                std::string word, lex_id;
                fields >> word >> lex_id;
                s.words.push_back(clean_word(word));
            }
            fields >> count;
            const int pointers = std::stoi(count);
            for (int i = 0; i < pointers; ++i) {
                Pointer     p;
                std::string pos, source_target;
                fields >> p.symbol >> p.target >> pos >> source_target;
                p.source_word = std::stoi(source_target.substr(0, 2), nullptr, 16);
                p.target_word = std::stoi(source_target.substr(2, 2), nullptr, 16);
                s.pointers.push_back(p);
            }
        } catch (const std::exception &) {
            fail(path + ":" + std::to_string(n), "malformed synset line");
        }
        const std::string gloss = line.substr(bar + 3);
        s.definition            = gloss.substr(0, gloss.find("; \""));
        while (!s.definition.empty() && (s.definition.back() == ' ' || s.definition.back() == ';')) {
            s.definition.pop_back();
        }
        synsets.emplace(offset, std::move(s));
    }
    return synsets;
}

class QuestionMaker {
  public:
    QuestionMaker(const WordnetOptions & options, std::mt19937_64 & rng) : options_(options), rng_(rng) {}

    // A record with `answer` among distractors drawn from `pool` (never equal to any excluded).
    void add(const std::string & domain, const std::string & question, const std::string & answer,
             const std::vector<std::string> & pool, const std::set<std::string> & exclude,
             std::vector<McqRecord> & out) {
        std::set<std::string> used = exclude;
        used.insert(answer);
        std::vector<std::string> choices{ answer };
        std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
        for (int tries = 0; static_cast<int64_t>(choices.size()) < options_.choices && tries < 100; ++tries) {
            const std::string & d = pool[pick(rng_)];
            if (used.insert(d).second) {
                choices.push_back(d);
            }
        }
        if (static_cast<int64_t>(choices.size()) < options_.choices) {
            return;
        }
        std::shuffle(choices.begin(), choices.end(), rng_);
        McqRecord r;
        r.domain   = domain;
        r.id       = domain + "-" + std::to_string(out.size());
        r.question = question;
        r.choices  = choices;
        r.label    = std::find(choices.begin(), choices.end(), answer) - choices.begin();
        out.push_back(std::move(r));
    }

  private:
    const WordnetOptions & options_;
    std::mt19937_64 &      rng_;
};

// First simple word of a synset, or "".
std::string head_word(const Synset & s) {
    for (const auto & w : s.words) {
        if (simple_word(w)) {
            return w;
        }
    }
    return "";
}

// Keys in a shuffled order, so each domain draws a seed-dependent sample.
std::vector<std::string> shuffled_keys(const std::map<std::string, Synset> & synsets, std::mt19937_64 & rng) {
    std::vector<std::string> keys;
    for (const auto & kv : synsets) {
        keys.push_back(kv.first);
    }
    std::shuffle(keys.begin(), keys.end(), rng);
    return keys;
}

}  // namespace

std::vector<McqRecord> generate_wordnet_mcq(const WordnetOptions & options) {
    if (options.choices < 2) {
        throw Error("wordnet: need at least 2 choices");
    }
    const auto nouns = read_data_file((fs::path(options.dir) / "data.noun").string());
    const auto adjs  = read_data_file((fs::path(options.dir) / "data.adj").string());
    std::mt19937_64 rng(options.seed);
    QuestionMaker   maker(options, rng);

    std::vector<std::string> noun_pool, adj_pool;
    for (const auto & kv : nouns) {
        if (!head_word(kv.second).empty()) {
            noun_pool.push_back(head_word(kv.second));
        }
    }
    for (const auto & kv : adjs) {
        if (!head_word(kv.second).empty()) {
            adj_pool.push_back(head_word(kv.second));
        }
    }

    std::vector<McqRecord> out, definition, hypernym, antonym;
    for (const auto & key : shuffled_keys(nouns, rng)) {
        const Synset &    s    = nouns.at(key);
        const std::string word = head_word(s);
        if (word.empty()) {
            continue;
        }
        const std::set<std::string> synonyms(s.words.begin(), s.words.end());
        if (static_cast<int64_t>(definition.size()) < options.per_domain && s.definition.size() <= 100 &&
            s.definition.find(word) == std::string::npos) {
            maker.add("definition", "Which word means: " + s.definition + "?", word, noun_pool, synonyms, definition);
        }
        if (static_cast<int64_t>(hypernym.size()) < options.per_domain) {
            for (const auto & p : s.pointers) {
                const auto it = nouns.find(p.target);
                if (p.symbol == "@" && it != nouns.end() && !head_word(it->second).empty()) {
                    std::set<std::string> exclude(synonyms);
                    exclude.insert(it->second.words.begin(), it->second.words.end());
                    maker.add("hypernym", "A " + word + " is a kind of what?", head_word(it->second), noun_pool, exclude,
                              hypernym);
                    break;
                }
            }
        }
    }
    for (const auto & key : shuffled_keys(adjs, rng)) {
        const Synset & s = adjs.at(key);
        for (const auto & p : s.pointers) {
            const auto it = adjs.find(p.target);
            if (static_cast<int64_t>(antonym.size()) >= options.per_domain || p.symbol != "!" || it == adjs.end() ||
                p.source_word < 1 || p.target_word < 1 ||
                p.source_word > static_cast<int>(s.words.size()) ||
                p.target_word > static_cast<int>(it->second.words.size())) {
                continue;
            }
            const std::string & word     = s.words[static_cast<size_t>(p.source_word - 1)];
            const std::string & opposite = it->second.words[static_cast<size_t>(p.target_word - 1)];
            if (simple_word(word) && simple_word(opposite)) {
                std::set<std::string> exclude(s.words.begin(), s.words.end());
                maker.add("antonym", "What is the opposite of " + word + "?", opposite, adj_pool, exclude, antonym);
            }
        }
    }
    for (auto * domain : { &definition, &hypernym, &antonym }) {
        out.insert(out.end(), domain->begin(), domain->end());
    }
    return out;
}

}  // namespace cgm
