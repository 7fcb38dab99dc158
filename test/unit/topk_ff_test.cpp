// Top-k FF activations against a plain per-row reference.
#include "models/topk_ff.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

using namespace cgm;

namespace {

// For each row: sort indices by pre-activation, keep the first k, zero the rest.
at::Tensor reference_topk(const at::Tensor & act, const at::Tensor & pre, int64_t k) {
    at::Tensor out  = at::zeros_like(act);
    const auto rows = pre.reshape({ -1, pre.size(-1) });
    const auto a    = act.reshape({ -1, act.size(-1) });
    auto       o    = out.view({ -1, out.size(-1) });
    for (int64_t r = 0; r < rows.size(0); ++r) {
        std::vector<int64_t> idx(static_cast<size_t>(rows.size(1)));
        std::iota(idx.begin(), idx.end(), 0);
        std::sort(idx.begin(), idx.end(),
                  [&](int64_t x, int64_t y) { return rows[r][x].item<float>() > rows[r][y].item<float>(); });
        for (int64_t j = 0; j < k; ++j) {
            o[r][idx[static_cast<size_t>(j)]] = a[r][idx[static_cast<size_t>(j)]];
        }
    }
    return out;
}

}  // namespace

TEST_CASE("keep_topk keeps the k largest pre-activations of each token", "[unit][topk]") {
    const at::Tensor pre = at::randn({ 2, 3, 16 });
    const at::Tensor act = at::relu(pre) * at::randn({ 2, 3, 16 });  // a gated-style activation
    for (const int64_t k : { 1, 3, 8, 15 }) {
        INFO("k = " << k);
        const at::Tensor got = keep_topk(act, pre, k);
        REQUIRE(at::equal(got, reference_topk(act, pre, k)));
        REQUIRE((got != 0).sum(-1).le(k).all().item<bool>());
    }
}

TEST_CASE("keep_topk with k = d_ff or k <= 0 is the dense activation, exactly", "[unit][topk]") {
    const at::Tensor pre = at::randn({ 4, 10 });
    const at::Tensor act = at::relu(pre);
    REQUIRE(at::equal(keep_topk(act, pre, 10), act));
    REQUIRE(at::equal(keep_topk(act, pre, 0), act));
}
