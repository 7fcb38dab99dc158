#pragma once
// IDX files of unsigned bytes (the MNIST format): a big-endian magic 0x000008DD (type 0x08, DD
// dimensions), DD big-endian u32 sizes, then exactly the product of the sizes in bytes, row-major.
// Gzip-compressed files are read through zlib, plain ones as they are.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace cgm {

// The file's array, uint8 of the shape its header declares. A magic other than 0x000008DD with
// DD = `dims`, or data shorter or longer than the sizes say, is an Error naming the file.
at::Tensor read_idx_u8(const std::string & path, int64_t dims);

}  // namespace cgm
