#include "models/dropout.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <mutex>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CGM_DROPOUT_AVX512 1
#endif

namespace cgm {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;  // Philox4x32 multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule increments
constexpr int64_t  kGroup = 64;                                 // elements per 16 counter blocks

// 64 words of group g in element order: out[16 j + l] = word j of block 16 g + l.
void philox_group_scalar(uint64_t g, uint64_t key, uint32_t * out) {
    for (uint64_t l = 0; l < 16; ++l) {
        const std::array<uint32_t, 4> w = philox4x32_10(16 * g + l, key);
        for (int j = 0; j < 4; ++j) {
            out[16 * j + l] = w[static_cast<size_t>(j)];
        }
    }
}

#ifdef CGM_DROPOUT_AVX512
// GCC 12's avx512fintrin.h seeds broadcasts from an uninitialized register it then overwrites,
// and -Wuninitialized reports that inside its own header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// Asked once, on first use: __builtin_cpu_init first, as a static initializer may run before
// libgcc's own.
bool has_avx512() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    return yes;
}

// lo and hi 32 bits of a * m per 32-bit lane.
__attribute__((target("avx512f"))) inline void mul_hi_lo(__m512i a, __m512i m, __m512i & lo, __m512i & hi) {
    const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// philox_group_scalar, 16 blocks at once (one per lane).
__attribute__((target("avx512f"))) void philox_group_avx512(uint64_t g, uint64_t key, uint32_t * out) {
    const uint64_t first = 16 * g;  // a multiple of 16: the 16 lanes never carry into word 1
    const __m512i  lane  = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i        c0    = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(first))), lane);
    __m512i        c1    = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(first >> 32)));
    __m512i        c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    const __m512i  m0 = _mm512_set1_epi32(static_cast<int>(kMul0)), m1 = _mm512_set1_epi32(static_cast<int>(kMul1));
    uint32_t       k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round, k0 += kWeyl0, k1 += kWeyl1) {
        __m512i lo0, hi0, lo1, hi1;
        mul_hi_lo(c0, m0, lo0, hi0);
        mul_hi_lo(c2, m1, lo1, hi1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
        c1 = lo1;
        c3 = lo0;
    }
    _mm512_storeu_si512(out, c0);
    _mm512_storeu_si512(out + 16, c1);
    _mm512_storeu_si512(out + 32, c2);
    _mm512_storeu_si512(out + 48, c3);
}
#pragma GCC diagnostic pop
#endif

void philox_group(uint64_t g, uint64_t key, uint32_t * out) {
#ifdef CGM_DROPOUT_AVX512
    if (has_avx512()) {
        return philox_group_avx512(g, key, out);
    }
#endif
    philox_group_scalar(g, key, out);
}

// A key for this call's stream: one draw of the default CPU generator (seeded by at::manual_seed).
uint64_t next_key() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

}  // namespace

std::array<uint32_t, 4> philox4x32_10(uint64_t counter, uint64_t key) {
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round, k0 += kWeyl0, k1 += kWeyl1) {
        const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0, p1 = static_cast<uint64_t>(kMul1) * c2;
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
        c1 = static_cast<uint32_t>(p1);
        c3 = static_cast<uint32_t>(p0);
        c0 = n0;
        c2 = n2;
    }
    return { c0, c1, c2, c3 };
}

uint32_t dropout_threshold(double p) {
    return static_cast<uint32_t>(std::min(std::llround(p * 4294967296.0), 4294967295LL));
}

at::Tensor dropout(const at::Tensor & x, double p) {
    if (p <= 0) {
        return x;
    }
    if (!x.device().is_cpu() || p >= 1) {
        return at::dropout(x, p, /*train=*/true);  // CUDA's is fused and parallel already
    }
    const uint64_t key       = next_key();
    const uint32_t threshold = dropout_threshold(p);
    at::Tensor     noise     = at::empty(x.sizes(), x.options().requires_grad(false));  // [x's shape]: 0 or 1/(1-p)
    const int64_t  n         = noise.numel();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "cgm::dropout", [&] {
        const auto keep = static_cast<scalar_t>(1.0 / (1.0 - p)), drop = static_cast<scalar_t>(0);
        scalar_t * out  = noise.data_ptr<scalar_t>();
        at::parallel_for(0, (n + kGroup - 1) / kGroup, 256, [&](int64_t begin, int64_t end) {
            alignas(64) uint32_t words[kGroup];
            for (int64_t g = begin; g < end; ++g) {
                philox_group(static_cast<uint64_t>(g), key, words);
                const int64_t first = g * kGroup, count = std::min(kGroup, n - first);
                for (int64_t i = 0; i < count; ++i) {
                    out[first + i] = words[i] >= threshold ? keep : drop;
                }
            }
        });
    });
    return x * noise;
}

}  // namespace cgm
