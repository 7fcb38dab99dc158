#include "vision/idx_file.h"

#include "core/error.h"

#include <ATen/ops/empty.h>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace cgm {
namespace {

struct GzClose {
    void operator()(gzFile_s * f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

std::string hex32(uint32_t v) {
    char text[11];
    std::snprintf(text, sizeof text, "0x%08x", v);
    return text;
}

// Up to `size` bytes into `dst`; fewer only at the end of the data. A read or gzip error is an Error.
size_t read_some(gzFile_s * f, uint8_t * dst, size_t size, const std::string & path) {
    size_t done = 0;
    while (done < size) {
        const auto chunk = static_cast<unsigned>(std::min<size_t>(size - done, size_t{ 1 } << 30));
        const int  got   = gzread(f, dst + done, chunk);
        if (got < 0) {
            int          code = 0;
            const char * why  = gzerror(f, &code);
            fail(path, std::string("cannot read: ") + (code == Z_ERRNO ? std::strerror(errno) : why));
        }
        if (got == 0) {
            int code = 0;
            gzerror(f, &code);
            if (code == Z_BUF_ERROR) {
                fail(path, "truncated gzip data");
            }
            break;
        }
        done += static_cast<size_t>(got);
    }
    return done;
}

constexpr uint64_t kMaxIdxBytes = uint64_t{ 1 } << 40;
// Deflate's best case: 258 bytes from a 2-bit code, just over 1032 to 1.
constexpr uint64_t kMaxDeflateRatio = 1033;

uint32_t big_endian(const uint8_t * p) {
    return (uint32_t{ p[0] } << 24) | (uint32_t{ p[1] } << 16) | (uint32_t{ p[2] } << 8) | uint32_t{ p[3] };
}

}  // namespace

at::Tensor read_idx_u8(const std::string & path, int64_t dims) {
    GzFile f(gzopen(path.c_str(), "rb"));
    if (!f) {
        fail(path, std::string("cannot open: ") + std::strerror(errno));
    }
    uint8_t magic[4];
    if (read_some(f.get(), magic, 4, path) < 4) {
        fail(path, "too short for an IDX header");
    }
    const uint32_t expected_magic = 0x800u | static_cast<uint32_t>(dims);
    if (big_endian(magic) != expected_magic) {
        const bool ubyte = magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08;
        fail(path, "bad IDX magic " + hex32(big_endian(magic)) + ", expected " + hex32(expected_magic) +
                       (ubyte ? " (" + std::to_string(magic[3]) + " dimensions instead of " + std::to_string(dims) + ")"
                              : " (unsigned bytes in " + std::to_string(dims) + " dimensions)"));
    }
    std::vector<uint8_t> header(static_cast<size_t>(4 * dims));
    if (read_some(f.get(), header.data(), header.size(), path) < header.size()) {
        fail(path, "truncated IDX header: fewer than " + std::to_string(dims) + " dimension sizes");
    }
    std::vector<int64_t> shape;
    std::string          shape_text;
    uint64_t             bytes = 1;
    bool                 huge  = false;
    for (int64_t d = 0; d < dims; ++d) {
        shape.push_back(big_endian(header.data() + 4 * d));
        shape_text += (d ? "x" : "") + std::to_string(shape.back());
        huge  = huge || (shape.back() > 0 && bytes > kMaxIdxBytes / static_cast<uint64_t>(shape.back()));
        bytes = huge ? kMaxIdxBytes : bytes * static_cast<uint64_t>(shape.back());
    }
    if (huge) {
        fail(path, "the dimensions " + shape_text + " declare more than " + std::to_string(kMaxIdxBytes) + " bytes");
    }
    // Checked against the file's size before anything is allocated: a plain file holds exactly the
    // data, gzip data inflates to at most kMaxDeflateRatio times its size.
    std::error_code ec;
    const uint64_t  file_size = std::filesystem::file_size(path, ec);
    const uint64_t  header_size = 4 + header.size();
    const auto      wrong_size  = [&](uint64_t have) {
        fail(path, "the dimensions " + shape_text + " need " + std::to_string(bytes) + " bytes of data but the file has " +
                       (have > bytes ? "more (trailing bytes)" : std::to_string(have) + " (truncated?)"));
    };
    if (!ec && gzdirect(f.get()) == 1 && file_size - header_size != bytes) {
        wrong_size(file_size - header_size);
    }
    if (!ec && gzdirect(f.get()) == 0 && bytes + header_size > kMaxDeflateRatio * file_size) {
        fail(path, "the dimensions " + shape_text + " need " + std::to_string(bytes) + " bytes of data, more than " +
                       std::to_string(file_size) + " bytes of gzip data can hold");
    }
    // The data is read in pieces, so a header that overstates the size allocates no more than the file holds.
    std::vector<uint8_t> data;
    size_t               have = 0;
    while (have <= bytes) {
        data.resize(have + std::min<size_t>(bytes + 1 - have, size_t{ 1 } << 24));
        const size_t got = read_some(f.get(), data.data() + have, data.size() - have, path);
        have += got;
        if (have < data.size()) {
            break;
        }
    }
    if (have != bytes) {
        wrong_size(have);
    }
    at::Tensor out = at::empty(shape, at::kByte);
    if (bytes > 0) {  // an empty tensor's data pointer is null, which memcpy may not be given
        std::memcpy(out.data_ptr<uint8_t>(), data.data(), bytes);
    }
    return out;
}

}  // namespace cgm
