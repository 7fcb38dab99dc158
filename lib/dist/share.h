#pragma once
// How n items (examples of a batch, batches of an evaluation) are split among the processes of a
// run: rank r takes the contiguous items [n*r/size, n*(r+1)/size), so that joining the shares in
// rank order gives back the original order.
#include <cstddef>
#include <utility>

namespace cgm {

inline std::pair<size_t, size_t> share_of(size_t n, int rank, int size) {
    const auto r = static_cast<size_t>(rank), s = static_cast<size_t>(size);
    return { n * r / s, n * (r + 1) / s };
}

}  // namespace cgm
