#include "io/safetensors.h"

#include "core/error.h"
#include "io/json_file.h"
#include "io/atomic_file.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/GradMode.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>

namespace cgm {
namespace {

// Larger headers are refused outright (the reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

const std::vector<std::pair<std::string, c10::ScalarType>> & dtype_table() {
    static const std::vector<std::pair<std::string, c10::ScalarType>> table = {
        { "F64", c10::kDouble }, { "F32", c10::kFloat }, { "F16", c10::kHalf },  { "BF16", c10::kBFloat16 },
        { "I64", c10::kLong },   { "I32", c10::kInt },   { "I16", c10::kShort }, { "I8", c10::kChar },
        { "U8", c10::kByte },    { "BOOL", c10::kBool },
    };
    return table;
}

c10::ScalarType dtype_from_name(const std::string & path, const std::string & tensor, const std::string & name) {
    for (const auto & [n, t] : dtype_table()) {
        if (n == name) {
            return t;
        }
    }
    fail(path, "tensor '" + tensor + "' has unsupported dtype '" + name + "'");
}

uint64_t read_u64_le(const uint8_t * p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

// Non-negative integer that fits in size_t, or an Error naming what it was meant to be.
size_t as_size(const std::string & path, const std::string & what, const nlohmann::json & v) {
    if (!v.is_number_unsigned()) {  // the parser stores every non-negative integer as unsigned
        fail(path, what + " must be a non-negative integer, got " + v.dump());
    }
    return v.get<size_t>();
}

SafetensorsEntry parse_entry(const std::string & path, const std::string & name, const nlohmann::json & info) {
    if (!info.is_object()) {
        fail(path, "header entry '" + name + "' is not an object");
    }
    for (const char * key : { "dtype", "shape", "data_offsets" }) {
        if (!info.contains(key)) {
            fail(path, "tensor '" + name + "' has no '" + key + "'");
        }
    }
    if (!info["dtype"].is_string()) {
        fail(path, "tensor '" + name + "' dtype must be a string");
    }
    SafetensorsEntry e;
    e.dtype = dtype_from_name(path, name, info["dtype"].get<std::string>());
    const auto & shape = info["shape"];
    if (!shape.is_array()) {
        fail(path, "tensor '" + name + "' shape must be an array");
    }
    size_t bytes = c10::elementSize(e.dtype);
    for (const auto & d : shape) {
        const size_t dim = as_size(path, "tensor '" + name + "' shape entry", d);
        if (dim > static_cast<size_t>(INT64_MAX) || __builtin_mul_overflow(bytes, dim, &bytes)) {
            fail(path, "tensor '" + name + "' shape " + shape.dump() + " is too large");
        }
        e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto & off = info["data_offsets"];
    if (!off.is_array() || off.size() != 2) {
        fail(path, "tensor '" + name + "' data_offsets must be [begin, end]");
    }
    e.begin = as_size(path, "tensor '" + name + "' data_offsets", off[0]);
    e.end   = as_size(path, "tensor '" + name + "' data_offsets", off[1]);
    if (e.end < e.begin) {
        fail(path, "tensor '" + name + "' data_offsets " + off.dump() + " end before begin");
    }
    if (e.end - e.begin != bytes) {
        fail(path, "tensor '" + name + "' holds " + std::to_string(e.end - e.begin) + " bytes but dtype " +
                       info["dtype"].get<std::string>() + " x shape " + shape.dump() + " needs " +
                       std::to_string(bytes));
    }
    return e;
}

}  // namespace

struct SafetensorsReader::Mapping {
    void * addr = MAP_FAILED;
    size_t size = 0;

    ~Mapping() {
        if (addr != MAP_FAILED) {
            ::munmap(addr, size);
        }
    }
};

SafetensorsReader::SafetensorsReader(const std::string & path) : path_(path), mapping_(std::make_shared<Mapping>()) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(path, std::string("cannot open: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path, "not a regular file");
    }
    const size_t file_size = static_cast<size_t>(st.st_size);
    if (file_size < 8) {
        ::close(fd);
        fail(path, "truncated: " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
    }
    mapping_->addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (mapping_->addr == MAP_FAILED) {
        fail(path, std::string("cannot map: ") + std::strerror(errno));
    }
    mapping_->size       = file_size;
    const auto *   bytes = static_cast<const uint8_t *>(mapping_->addr);
    const uint64_t n     = read_u64_le(bytes);
    if (n > kMaxHeaderBytes || n > file_size - 8) {
        fail(path, "header length " + std::to_string(n) + " is larger than the file (" + std::to_string(file_size) +
                       " bytes): truncated or not a safetensors file");
    }
    data_                  = bytes + 8 + n;
    const size_t data_size = file_size - 8 - n;

    // Parse the header, refusing duplicate names (plain JSON parsing would keep the last one).
    std::set<std::string> seen;
    std::string           duplicate;
    nlohmann::json        header;
    try {
        header = nlohmann::json::parse(
            reinterpret_cast<const char *>(bytes + 8), reinterpret_cast<const char *>(data_),
            [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json & parsed) {
                if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
                    const auto key = parsed.get<std::string>();
                    if (!seen.insert(key).second && duplicate.empty()) {
                        duplicate = key;
                    }
                }
                return true;
            });
    } catch (const nlohmann::json::exception & e) {
        fail(path, std::string("header is not valid JSON: ") + json_error_text(e));
    }
    if (!duplicate.empty()) {
        fail(path, "duplicate tensor name '" + duplicate + "' in header");
    }
    if (!header.is_object()) {
        fail(path, "header is not a JSON object");
    }

    std::vector<std::pair<size_t, std::string>> by_offset;
    for (const auto & [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) {
                fail(path, "__metadata__ is not an object");
            }
            for (const auto & [k, v] : info.items()) {
                if (!v.is_string()) {
                    fail(path, "__metadata__ value for '" + k + "' is not a string");
                }
                metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        SafetensorsEntry e = parse_entry(path, name, info);
        if (e.end > data_size) {
            fail(path, "tensor '" + name + "' data_offsets end " + std::to_string(e.end) + " is past the end of the data (" +
                           std::to_string(data_size) + " bytes): truncated file?");
        }
        by_offset.emplace_back(e.begin, name);
        entries_.emplace(name, std::move(e));
    }

    // The data section must be covered exactly: contiguous, non-overlapping, no trailing bytes.
    std::sort(by_offset.begin(), by_offset.end());
    size_t expected = 0;
    for (const auto & [begin, name] : by_offset) {
        const auto & e = entries_.at(name);
        if (e.begin != expected) {
            fail(path, "tensor '" + name + "' starts at byte " + std::to_string(e.begin) + " but the previous tensor ends at " +
                           std::to_string(expected) + " (overlapping or non-contiguous data)");
        }
        expected = e.end;
        names_.push_back(name);
    }
    if (expected != data_size) {
        fail(path, "tensors cover " + std::to_string(expected) + " bytes but the data section has " +
                       std::to_string(data_size) + " (trailing or missing data)");
    }
}

bool SafetensorsReader::contains(const std::string & name) const {
    return entries_.count(name) != 0;
}

const SafetensorsEntry & SafetensorsReader::entry(const std::string & name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
        fail(path_, "no tensor named '" + name + "'");
    }
    return it->second;
}

at::Tensor SafetensorsReader::tensor(const std::string & name) const {
    const SafetensorsEntry & e       = entry(name);
    const auto               options = at::TensorOptions().dtype(e.dtype);
    auto *                   ptr     = const_cast<uint8_t *>(data_ + e.begin);
    const size_t             align   = c10::elementSize(e.dtype);
    if (e.begin == e.end || reinterpret_cast<uintptr_t>(ptr) % align != 0) {
        at::Tensor t = at::empty(e.shape, options);
        if (e.end > e.begin) {
            std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
        }
        return t;
    }
    std::shared_ptr<Mapping> keep_alive = mapping_;
    return at::from_blob(ptr, e.shape, [keep_alive](void *) {}, options);
}

void load_into(const SafetensorsReader & file, const NamedTensors & targets) {
    c10::NoGradGuard no_grad;
    for (const auto & [name, t] : targets) {
        if (!file.contains(name)) {
            fail(file.path(), "has no tensor '" + name + "'");
        }
        const at::Tensor stored = file.tensor(name);
        if (stored.sizes() != t.sizes()) {
            fail(file.path(), "tensor '" + name + "' has shape " + c10::str(stored.sizes()) + ", expected " + c10::str(t.sizes()));
        }
        at::Tensor(t).copy_(stored);
    }
    if (file.names().size() != targets.size()) {
        fail(file.path(), "holds " + std::to_string(file.names().size()) + " tensors, expected " + std::to_string(targets.size()));
    }
}

std::string safetensors_dtype_name(c10::ScalarType dtype) {
    for (const auto & [n, t] : dtype_table()) {
        if (t == dtype) {
            return n;
        }
    }
    throw Error(std::string("safetensors: dtype ") + c10::toString(dtype) + " is not supported");
}

void write_safetensors(const std::string & path, const NamedTensors & tensors,
                       const std::map<std::string, std::string> & metadata) {
    std::vector<at::Tensor> cpu;
    nlohmann::ordered_json  header;
    if (!metadata.empty()) {
        header["__metadata__"] = metadata;
    }
    size_t offset = 0;
    for (const auto & [name, t] : tensors) {
        if (name == "__metadata__" || header.contains(name)) {
            fail(path, "cannot write tensor name '" + name + "' (reserved or duplicate)");
        }
        cpu.push_back(t.detach().to(at::kCPU).contiguous());
        const size_t bytes = cpu.back().nbytes();
        header[name]       = { { "dtype", safetensors_dtype_name(t.scalar_type()) },
                               { "shape", t.sizes().vec() },
                               { "data_offsets", { offset, offset + bytes } } };
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    write_file_atomic(path, [&](std::ostream & out) {
        uint8_t len[8];
        for (int i = 0; i < 8; ++i) {
            len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
        }
        out.write(reinterpret_cast<const char *>(len), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto & t : cpu) {
            out.write(static_cast<const char *>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
        }
    });
}

}  // namespace cgm
