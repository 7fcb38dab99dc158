#include "vision/image_format.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace cgm {
namespace {

uint32_t le16(const uint8_t * p) {
    return uint32_t{ p[0] } | (uint32_t{ p[1] } << 8);
}

uint32_t le32(const uint8_t * p) {
    return le16(p) | (le16(p + 2) << 16);
}

uint32_t be32(const uint8_t * p) {
    return (uint32_t{ p[0] } << 24) | (uint32_t{ p[1] } << 16) | (uint32_t{ p[2] } << 8) | p[3];
}

// Uncompressed rows are padded to 4 bytes and start at the header's pixel offset.
std::string bmp_fault(const uint8_t * d, size_t size) {
    uint8_t header_bytes[34] = {};  // stb reads zeros past the end
    std::copy_n(d, std::min(size, sizeof header_bytes), header_bytes);
    const uint8_t * h      = header_bytes;
    const uint32_t  offset = le32(h + 10);
    int64_t         width = 0, height = 0, bits = 0;
    uint32_t        compression = 0;
    if (le32(h + 14) == 12) {  // OS/2 header
        width  = le16(h + 18);
        height = le16(h + 20);
        bits   = le16(h + 24);
    } else {
        width       = static_cast<int32_t>(le32(h + 18));
        height      = std::abs(int64_t{ static_cast<int32_t>(le32(h + 22)) });  // negative: rows top-down
        bits        = le16(h + 28);
        compression = le32(h + 30);
    }
    if (compression != 0 && compression != 3) {
        return "";  // run-length and embedded formats: stb refuses them
    }
    if (width <= 0 || bits <= 0 || height <= 0) {
        return "";  // stb refuses these too
    }
    const int64_t stride    = (width * bits + 31) / 32 * 4;  // < 2^47: width < 2^31, bits < 2^16
    const int64_t available = static_cast<int64_t>(size) - offset;
    if (available < 0 || stride > available / height) {
        return "truncated pixel data (" + std::to_string(height) + " rows of " + std::to_string(stride) +
               " bytes from byte " + std::to_string(offset) + ", but the file has " + std::to_string(size) + ")";
    }
    return "";
}

// Every chunk's data must lie inside the file: stb allocates an IDAT chunk's declared length
// before it reads the chunk, so a short file could otherwise ask for gigabytes.
std::string png_fault(const uint8_t * d, size_t size) {
    for (size_t pos = 8; pos + 8 <= size;) {
        const uint64_t    length = be32(d + pos);
        const std::string type(reinterpret_cast<const char *>(d + pos + 4), 4);
        if (length + 12 > size - pos) {
            return "chunk at byte " + std::to_string(pos) + " declares " + std::to_string(length) +
                   " bytes of data, past the end of the file (" + std::to_string(size) + " bytes)";
        }
        if (type == "IEND") {
            break;
        }
        pos += 12 + length;
    }
    return "";
}

bool jpeg_restart_or_stuffing(uint8_t marker) {
    return marker == 0 || (marker >= 0xd0 && marker <= 0xd7);
}

// Walks the segments as stb does (skipping stray bytes between them and the entropy-coded data
// after a scan header) and checks every Huffman table (DHT) the way stb reads it: stb 2.27 stores
// a table's code lengths before checking that there are at most 256 of them.
std::string jpeg_fault(const uint8_t * d, size_t size) {
    const auto at  = [&](size_t i) { return i < size ? d[i] : uint8_t{ 0 }; };  // stb reads zeros past the end
    size_t     pos = 2;
    while (pos + 1 < size) {
        if (d[pos] != 0xff || d[pos + 1] == 0xff) {  // stray byte or fill
            ++pos;
            continue;
        }
        const uint8_t m = d[pos + 1];
        if (m == 0xd9) {
            return "";
        }
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
            pos += 2;
            continue;
        }
        const size_t length = (size_t{ at(pos + 2) } << 8) | at(pos + 3);
        if (m == 0xc4) {
            int64_t left = static_cast<int64_t>(length) - 2;
            for (size_t t = pos + 4; left > 0;) {
                size_t codes = 0;
                for (size_t i = 1; i <= 16; ++i) {
                    codes += at(t + i);
                }
                if (codes > 256) {
                    return "corrupt Huffman table (" + std::to_string(codes) + " codes, at most 256)";
                }
                t += 17 + codes;
                left -= static_cast<int64_t>(17 + codes);
            }
        }
        pos += 2 + length;
        if (m == 0xda) {  // scan data runs to the next marker that is neither stuffing nor a restart
            while (pos < size) {
                size_t next = pos;
                while (next < size && d[next] == 0xff) {
                    ++next;
                }
                if (next == pos) {
                    ++pos;
                } else if (next < size && jpeg_restart_or_stuffing(d[next])) {
                    pos = next + 1;
                } else {
                    pos = next - 1;
                    break;
                }
            }
        }
    }
    return "";
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t * data, size_t size) {
    const auto starts_with = [&](const char * magic, size_t n) { return size >= n && std::memcmp(data, magic, n) == 0; };
    if (starts_with("\x89PNG\r\n\x1a\n", 8)) {
        return ImageFormat::Png;
    }
    if (starts_with("\xff\xd8\xff", 3)) {
        return ImageFormat::Jpeg;
    }
    if (starts_with("BM", 2)) {
        return ImageFormat::Bmp;
    }
    if (starts_with("GIF87a", 6) || starts_with("GIF89a", 6)) {
        return ImageFormat::Gif;
    }
    return ImageFormat::Unknown;
}

const char * image_format_name(ImageFormat format) {
    switch (format) {
        case ImageFormat::Png: return "PNG";
        case ImageFormat::Jpeg: return "JPEG";
        case ImageFormat::Bmp: return "BMP";
        case ImageFormat::Gif: return "GIF";
        case ImageFormat::Unknown: break;
    }
    return "image";
}

std::optional<std::pair<int64_t, int64_t>> declared_size(ImageFormat format, const uint8_t * data, size_t size) {
    switch (format) {
        case ImageFormat::Png:
            if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
                return std::make_pair(int64_t{ be32(data + 16) }, int64_t{ be32(data + 20) });
            }
            break;
        case ImageFormat::Gif:
            if (size >= 10) {
                return std::make_pair(int64_t{ le16(data + 6) }, int64_t{ le16(data + 8) });
            }
            break;
        case ImageFormat::Bmp:
            if (size >= 22 && le32(data + 14) == 12) {
                return std::make_pair(int64_t{ le16(data + 18) }, int64_t{ le16(data + 20) });
            }
            if (size >= 26) {
                return std::make_pair(int64_t{ static_cast<int32_t>(le32(data + 18)) },
                                      std::abs(int64_t{ static_cast<int32_t>(le32(data + 22)) }));
            }
            break;
        case ImageFormat::Jpeg:
        case ImageFormat::Unknown: break;
    }
    return std::nullopt;
}

std::string image_structure_fault(ImageFormat format, const uint8_t * data, size_t size) {
    switch (format) {
        case ImageFormat::Png: return png_fault(data, size);
        case ImageFormat::Bmp: return bmp_fault(data, size);
        case ImageFormat::Jpeg: return jpeg_fault(data, size);
        case ImageFormat::Gif: {
            const std::optional<GifFirstFrame> f = gif_first_frame(data, size);
            return f && !f->data_complete ? "truncated data in the first frame" : "";
        }
        case ImageFormat::Unknown: break;
    }
    return "";
}

std::optional<GifFirstFrame> gif_first_frame(const uint8_t * data, size_t size) {
    GifFirstFrame f;  // returned as soon as the data ends, data_complete false
    size_t        pos  = 13;  // signature (6) and logical screen descriptor (7)
    const auto    have = [&](size_t n) { return pos + n <= size; };
    if (!have(0)) {
        return f;
    }
    const auto table_bytes = [](uint8_t flags) { return (flags & 0x80) ? size_t{ 3 } << ((flags & 7) + 1) : size_t{ 0 }; };
    const size_t    global_bytes = table_bytes(data[10]);
    const uint8_t * global_table = data + pos;
    pos += global_bytes;
    const auto skip_sub_blocks = [&] {  // true when the terminating empty block is inside the data
        while (have(1) && data[pos] != 0) {
            pos += 1 + size_t{ data[pos] };
        }
        if (!have(1)) {
            return false;
        }
        ++pos;
        return true;
    };
    int transparent = -1;
    while (have(1)) {
        const uint8_t block = data[pos++];
        if (block == 0x21) {  // extension: a label, then sub-blocks
            if (!have(1)) {
                return f;
            }
            const uint8_t label = data[pos++];
            if (label == 0xf9 && have(5) && data[pos] >= 4) {  // graphic control: size, flags, delay, index
                transparent = (data[pos + 1] & 1) ? data[pos + 4] : -1;
            }
            if (!skip_sub_blocks()) {
                return f;
            }
        } else if (block == 0x2c) {  // image descriptor: left, top, width, height, flags
            if (!have(9)) {
                return f;
            }
            f.left                   = le16(data + pos);
            f.top                    = le16(data + pos + 2);
            f.width                  = le16(data + pos + 4);
            f.height                 = le16(data + pos + 6);
            const size_t local_bytes = table_bytes(data[pos + 8]);
            pos += 9;
            if (!have(local_bytes)) {
                return f;
            }
            const uint8_t * table = local_bytes ? data + pos : global_table;
            const size_t    bytes = local_bytes ? local_bytes : global_bytes;
            pos += local_bytes;
            f.has_transparency = transparent >= 0;
            const auto index   = static_cast<size_t>(std::max(transparent, 0));
            if (3 * index + 3 <= bytes) {
                std::copy_n(table + 3 * index, 3, f.fill);
            }
            ++pos;  // LZW minimum code size
            f.data_complete = have(0) && skip_sub_blocks();
            return f;
        } else {
            return std::nullopt;
        }
    }
    return f;
}

}  // namespace cgm
