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

Splits split_records(const std::vector<McqRecord> & records, const SplitRatios & ratios, uint64_t seed) {
    std::map<std::string, std::vector<const McqRecord *>> by_domain;
    for (const auto & r : records) {
        by_domain[r.domain].push_back(&r);
    }
    Splits          out;
    std::mt19937_64 rng(seed);
    for (auto & [domain, items] : by_domain) {
        std::shuffle(items.begin(), items.end(), rng);
        const auto n       = static_cast<double>(items.size());
        const auto n_train = static_cast<size_t>(std::llround(n * ratios.train));
        const auto n_val   = std::min(items.size() - n_train, static_cast<size_t>(std::llround(n * ratios.val)));
        for (size_t i = 0; i < items.size(); ++i) {
            auto & split = i < n_train ? out.train : i < n_train + n_val ? out.val : out.test;
            split.push_back(*items[i]);
        }
    }
    return out;
}

}  // namespace cgm
