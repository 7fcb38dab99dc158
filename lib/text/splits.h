#pragma once
// Seeded train/val/test splits, stratified by domain (text) or by class (images).
#include "text/mcq.h"

#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct SplitRatios {
    double train = 0.8;
    double val   = 0.1;
    double test  = 0.1;
};

// "train=0.8,val=0.1,test=0.1" (any subset; missing ones are 0); ratios must sum to 1.
SplitRatios parse_split_ratios(const std::string & spec);

// Positions into a list of items, per split.
struct SplitIndices {
    std::vector<size_t> train, val, test;
};

// strata[i] is item i's stratum (a domain, a class). Each stratum is shuffled with the seed and
// cut by the ratios (rounded per stratum), strata in increasing order with one generator: every
// split holds every stratum in proportion, within one item, and a seed always gives the same cut.
SplitIndices stratified_split(const std::vector<int64_t> & strata, const SplitRatios & ratios, uint64_t seed);

struct Splits {
    std::vector<McqRecord> train, val, test;
};

// stratified_split with the domains as strata, numbered in name order.
Splits split_records(const std::vector<McqRecord> & records, const SplitRatios & ratios, uint64_t seed);

}  // namespace cgm
