// cgm::dropout: Philox4x32-10 against Random123's known answer, every element's keep/drop bit
// against the stream's definition (so the AVX-512 and scalar paths and any thread count agree),
// the keep rate, scaling, gradient and determinism under at::manual_seed.
#include "models/dropout.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <mutex>

using namespace cgm;

namespace {

// The key cgm::dropout takes after at::manual_seed(seed): the default generator's first random64.
uint64_t key_after_seed(uint64_t seed) {
    at::manual_seed(seed);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

// Restores LibTorch's thread count when a test section ends.
struct ThreadCount {
    int saved = at::get_num_threads();
    ~ThreadCount() { at::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("philox4x32_10 gives Random123's known answer for counter 0, key 0", "[unit][dropout]") {
    REQUIRE(philox4x32_10(0, 0) == std::array<uint32_t, 4>{ 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u });
}

TEST_CASE("dropout keeps exactly the elements whose Philox word reaches the threshold, for any thread count",
          "[unit][dropout]") {
    ThreadCount   restore;
    const double  p = GENERATE(0.1, 0.5);
    const int64_t n = GENERATE(1000, 100003);  // a tail shorter than a group of 64; several parallel chunks
    const uint64_t key = key_after_seed(7);
    const uint32_t threshold = dropout_threshold(p);
    for (const int threads : { 1, 2 }) {
        at::set_num_threads(threads);
        at::manual_seed(7);
        const at::Tensor y = dropout(at::ones({ n }), p);  // [n]: 0 or 1/(1-p)
        const float *    v = y.data_ptr<float>();
        const float      keep = static_cast<float>(1.0 / (1.0 - p));
        int64_t          wrong = 0;
        for (int64_t i = 0; i < n; ++i) {
            wrong += v[i] != (dropout_word(static_cast<uint64_t>(i), key) >= threshold ? keep : 0.0f);
        }
        INFO("p " << p << ", n " << n << ", threads " << threads);
        REQUIRE(wrong == 0);
    }
}

TEST_CASE("dropout drops a fraction p, scales the rest by 1/(1-p), keeps the shape and dtype, and passes "
          "gradients through the kept elements",
          "[unit][dropout]") {
    at::manual_seed(3);
    const double     p = 0.1;
    const at::Tensor x = at::rand({ 64, 128, 128 }).add_(0.5).requires_grad_();  // [64, 128, 128], no zeros
    const at::Tensor y = dropout(x, p);
    REQUIRE(y.sizes() == x.sizes());
    const at::Tensor kept = y.ne(0);
    const double     n = static_cast<double>(x.numel()), rate = kept.sum().item<double>() / n;
    REQUIRE(std::abs(rate - (1 - p)) < 5 * std::sqrt(p * (1 - p) / n));  // 5 sigma
    REQUIRE(at::allclose(y.masked_select(kept), x.detach().masked_select(kept) / (1 - p)));
    y.sum().backward();
    REQUIRE(at::equal(x.grad(), kept.to(at::kFloat) / (1 - p)));

    const at::Tensor b = dropout(at::ones({ 8, 512 }, at::kBFloat16), 0.5);
    REQUIRE(b.scalar_type() == at::kBFloat16);
    REQUIRE(b.eq(0).logical_or(b.eq(2)).all().item<bool>());  // 1/(1-0.5) is exact in bf16
}

TEST_CASE("dropout is fixed by at::manual_seed and new at every call; p 0 is the identity", "[unit][dropout]") {
    const at::Tensor x = at::ones({ 4096 });
    at::manual_seed(11);
    const at::Tensor first = dropout(x, 0.3), second = dropout(x, 0.3);
    at::manual_seed(11);
    REQUIRE(at::equal(dropout(x, 0.3), first));
    REQUIRE(!at::equal(first, second));
    REQUIRE(dropout(x, 0.0).is_same(x));
}
