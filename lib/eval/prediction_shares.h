#pragma once
// A prediction pass on several processes: each rank scores a contiguous share of the evaluation
// batches (the same batches one process scores, so every answer and loss is the same), then every
// rank gets all of them back in order. Alone, nothing moves.
#include "adapters/lora_mixture.h"
#include "dist/share.h"
#include "dist/world.h"
#include "eval/prediction.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cgm {

// This rank's evaluation batches [start, end) of n examples (batch_end's batches).
template <class DomainOf>
std::vector<std::pair<size_t, size_t>> rank_batches(size_t n, size_t batch_size, DomainOf && domain_of) {
    std::vector<std::pair<size_t, size_t>> all;
    for (size_t start = 0; start < n; start = all.back().second) {
        all.emplace_back(start, batch_end(start, n, batch_size, domain_of));
    }
    const auto [from, to] = share_of(all.size(), dist::rank(), dist::size());
    return { all.begin() + static_cast<std::ptrdiff_t>(from), all.begin() + static_cast<std::ptrdiff_t>(to) };
}

// The rows each module of the log holds (before a pass: what join_shares leaves alone).
std::map<std::string, size_t> log_sizes(const GateLog * log);

// Every rank's predictions, batch losses, the gate log rows added since `log_before` and `columns`
// (per-example integers), joined in rank order; seconds: the slowest rank's. Then totals the
// losses (loss, batch_mean_loss) over result.batches.
void join_shares(PredictResult & result, GateLog * log, const std::map<std::string, size_t> & log_before,
                 const std::vector<std::vector<int64_t> *> & columns = {});

}  // namespace cgm
