// Evaluation batches: at most the batch size, and never across a change of domain.
#include "eval/prediction.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace cgm;

namespace {

// The batches batch_end cuts from `domains` as [start, end) pairs.
std::vector<std::pair<size_t, size_t>> batches(const std::vector<std::string> & domains, size_t batch_size) {
    std::vector<std::pair<size_t, size_t>> out;
    for (size_t start = 0, end = 0; start < domains.size(); start = end) {
        end = batch_end(start, domains.size(), batch_size, [&](size_t i) { return domains[i]; });
        out.emplace_back(start, end);
    }
    return out;
}

}  // namespace

TEST_CASE("evaluation batches hold at most the batch size and never span two domains", "[unit][eval]") {
    using Cuts = std::vector<std::pair<size_t, size_t>>;
    REQUIRE(batches({ "a", "a", "a", "a", "a" }, 2) == Cuts{ { 0, 2 }, { 2, 4 }, { 4, 5 } });
    REQUIRE(batches({ "a", "a", "a", "b", "b", "b", "b" }, 4) == Cuts{ { 0, 3 }, { 3, 7 } });
    REQUIRE(batches({ "a", "b", "a" }, 8) == Cuts{ { 0, 1 }, { 1, 2 }, { 2, 3 } });
    REQUIRE(batches({ "a", "a", "b" }, 1) == Cuts{ { 0, 1 }, { 1, 2 }, { 2, 3 } });
    REQUIRE(batches({}, 4).empty());
}
