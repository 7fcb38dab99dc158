#include "core/sha256.h"

#include "core/error.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

namespace cgm {
namespace {

constexpr std::array<uint32_t, 64> kRound = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

uint32_t rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

// The running hash: whole 64-byte blocks are absorbed as they arrive, the tail is padded at the end.
class Sha256 {
  public:
    void update(const unsigned char * data, size_t n) {
        bits_ += static_cast<uint64_t>(n) * 8;
        while (n > 0) {
            const size_t take = std::min(n, 64 - fill_);
            std::memcpy(block_.data() + fill_, data, take);
            fill_ += take;
            data += take;
            n -= take;
            if (fill_ == 64) {
                absorb();
                fill_ = 0;
            }
        }
    }

    std::string hex_digest() {
        const uint64_t bits = bits_;  // the message's length, before the padding
        const unsigned char one = 0x80, zero = 0;
        update(&one, 1);
        while (fill_ != 56) {
            update(&zero, 1);
        }
        for (int i = 7; i >= 0; --i) {
            const auto byte = static_cast<unsigned char>(bits >> (8 * i));
            update(&byte, 1);
        }
        std::string out;
        char        digits[9];
        for (const uint32_t h : state_) {
            std::snprintf(digits, sizeof digits, "%08x", h);
            out += digits;
        }
        return out;
    }

  private:
    void absorb() {
        std::array<uint32_t, 64> w{};
        for (int i = 0; i < 16; ++i) {
            w[i] = uint32_t(block_[4 * i]) << 24 | uint32_t(block_[4 * i + 1]) << 16 | uint32_t(block_[4 * i + 2]) << 8 |
                   uint32_t(block_[4 * i + 3]);
        }
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i]              = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::array<uint32_t, 8> v = state_;
        for (int i = 0; i < 64; ++i) {
            const uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
            const uint32_t t1 = v[7] + s1 + ((v[4] & v[5]) ^ (~v[4] & v[6])) + kRound[i] + w[i];
            const uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
            const uint32_t t2 = s0 + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
            v = { t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6] };
        }
        for (int i = 0; i < 8; ++i) {
            state_[i] += v[i];
        }
    }

    std::array<uint32_t, 8> state_ = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    std::array<unsigned char, 64> block_{};
    size_t                        fill_ = 0;
    uint64_t                      bits_ = 0;
};

}  // namespace

std::string sha256_hex(const std::string & bytes) {
    Sha256 h;
    h.update(reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size());
    return h.hex_digest();
}

std::string sha256_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(path, "cannot open");
    }
    Sha256                     h;
    std::vector<unsigned char> buffer(1 << 20);
    while (in) {
        in.read(reinterpret_cast<char *>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
        h.update(buffer.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) {
        fail(path, "read failed");
    }
    return h.hex_digest();
}

}  // namespace cgm
