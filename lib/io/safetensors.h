#pragma once
// The safetensors format: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then raw
// little-endian row-major data. Every field is validated on open; a bad file is an Error that
// names the file and the problem, never an out-of-bounds read.
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cgm {

struct SafetensorsEntry {
    c10::ScalarType      dtype;
    std::vector<int64_t> shape;
    size_t               begin;  // byte offsets relative to the start of the data section
    size_t               end;
};

class SafetensorsReader {
  public:
    // Maps the file (private, copy-on-write: tensors may be written to; the file never is).
    explicit SafetensorsReader(const std::string & path);

    const std::string &                        path() const { return path_; }
    const std::vector<std::string> &           names() const { return names_; }  // in data order
    const std::map<std::string, std::string> & metadata() const { return metadata_; }
    bool                                       contains(const std::string & name) const;
    const SafetensorsEntry &                   entry(const std::string & name) const;

    // A CPU tensor over the mapped bytes (no copy unless the data is misaligned for its dtype).
    at::Tensor tensor(const std::string & name) const;

  private:
    struct Mapping;
    std::string                             path_;
    std::shared_ptr<Mapping>                mapping_;
    const uint8_t *                         data_ = nullptr;  // start of the data section
    std::map<std::string, SafetensorsEntry> entries_;
    std::vector<std::string>                names_;
    std::map<std::string, std::string>      metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device, any layout) in the given order, atomically. Names must be unique.
void write_safetensors(const std::string & path, const NamedTensors & tensors,
                       const std::map<std::string, std::string> & metadata = { { "format", "pt" } });

// Copies the file's tensors into `targets` by name (shapes must agree); a missing, mis-shaped or
// extra tensor is an Error naming the file.
void load_into(const SafetensorsReader & file, const NamedTensors & targets);

// "F32", "BF16", ... for a dtype the format supports; Error otherwise.
std::string safetensors_dtype_name(c10::ScalarType dtype);

}  // namespace cgm
