#pragma once
// Seeded train/val/test splits, stratified by domain.
#include "text/mcq.h"

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

struct Splits {
    std::vector<McqRecord> train, val, test;
};

// Each domain is shuffled with the seed and cut by the ratios, so every split sees every domain
// in proportion.
Splits split_records(const std::vector<McqRecord> & records, const SplitRatios & ratios, uint64_t seed);

}  // namespace cgm
