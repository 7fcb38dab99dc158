#include "text/splits.h"

#include "core/error.h"
#include "core/numbers.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>

namespace cgm {

SplitRatios parse_split_ratios(const std::string & spec) {
    SplitRatios       r{ 0, 0, 0 };
    std::stringstream items(spec);
    std::string       item;
    while (std::getline(items, item, ',')) {
        const size_t                eq     = item.find('=');
        const std::optional<double> parsed = eq == std::string::npos ? std::nullopt : parse_number(item.substr(eq + 1));
        const double                v      = parsed.value_or(-1);
        const std::string           name   = item.substr(0, eq);
        if (v < 0 || v > 1 || (name != "train" && name != "val" && name != "test")) {
            fail("--split", "bad entry '" + item + "' (expected train=F,val=F,test=F with F in [0, 1])");
        }
        (name == "train" ? r.train : name == "val" ? r.val : r.test) = v;
    }
    if (std::abs(r.train + r.val + r.test - 1.0) > 1e-6) {
        fail("--split", "ratios in '" + spec + "' sum to " + std::to_string(r.train + r.val + r.test) + ", not 1");
    }
    return r;
}

SplitIndices stratified_split(const std::vector<int64_t> & strata, const SplitRatios & ratios, uint64_t seed) {
    std::map<int64_t, std::vector<size_t>> by_stratum;
    for (size_t i = 0; i < strata.size(); ++i) {
        by_stratum[strata[i]].push_back(i);
    }
    SplitIndices    out;
    std::mt19937_64 rng(seed);
    for (auto & [stratum, items] : by_stratum) {
        std::shuffle(items.begin(), items.end(), rng);
        const auto n       = static_cast<double>(items.size());
        const auto n_train = static_cast<size_t>(std::llround(n * ratios.train));
        const auto n_val   = std::min(items.size() - n_train, static_cast<size_t>(std::llround(n * ratios.val)));
        for (size_t i = 0; i < items.size(); ++i) {
            auto & split = i < n_train ? out.train : i < n_train + n_val ? out.val : out.test;
            split.push_back(items[i]);
        }
    }
    return out;
}

Splits split_records(const std::vector<McqRecord> & records, const SplitRatios & ratios, uint64_t seed) {
    std::map<std::string, int64_t> ids;
    for (const auto & r : records) {
        ids.emplace(r.domain, 0);
    }
    int64_t next = 0;
    for (auto & [domain, id] : ids) {
        id = next++;
    }
    std::vector<int64_t> strata;
    strata.reserve(records.size());
    for (const auto & r : records) {
        strata.push_back(ids.at(r.domain));
    }
    const SplitIndices idx = stratified_split(strata, ratios, seed);
    Splits             out;
    for (const auto & [from, to] : { std::pair{ &idx.train, &out.train }, std::pair{ &idx.val, &out.val },
                                     std::pair{ &idx.test, &out.test } }) {
        for (const size_t i : *from) {
            to->push_back(records[i]);
        }
    }
    return out;
}

}  // namespace cgm
