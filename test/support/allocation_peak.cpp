#include "support/allocation_peak.h"

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

namespace cgm::test {
namespace {

constexpr uint8_t kPriority = 200;  // above LibTorch's default allocator

struct Counters {
    std::atomic<int64_t> current{ 0 }, peak{ 0 };
};

// A counted allocation; it keeps the counters alive, as a tensor may outlive the tracker.
struct Held {
    c10::DataPtr              inner;
    int64_t                   bytes;
    std::shared_ptr<Counters> counters;
};

void release(void * context) {
    auto * held = static_cast<Held *>(context);
    held->counters->current.fetch_sub(held->bytes);
    delete held;  // frees the inner allocation
}

}  // namespace

struct AllocationPeak::Counting : c10::Allocator {
    c10::Allocator *          inner    = c10::GetCPUAllocator();
    std::shared_ptr<Counters> counters = std::make_shared<Counters>();

    c10::DataPtr counted(size_t n) const {
        c10::DataPtr  data  = inner->allocate(n);
        void *        ptr   = data.get();
        const auto    bytes = static_cast<int64_t>(n);
        const int64_t now   = counters->current.fetch_add(bytes) + bytes;
        for (int64_t seen = counters->peak.load(); now > seen && !counters->peak.compare_exchange_weak(seen, now);) {
        }
        return { ptr, new Held{ std::move(data), bytes, counters }, &release, c10::Device(c10::kCPU) };
    }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
    c10::DataPtr allocate(size_t n) override { return counted(n); }
    void copy_data(void * dest, const void * src, size_t count) const override { default_copy_data(dest, src, count); }
#else
    c10::DataPtr allocate(size_t n) const override { return counted(n); }
#endif
};

AllocationPeak::AllocationPeak() : allocator_(std::make_unique<Counting>()) {
    c10::SetCPUAllocator(allocator_.get(), kPriority);
}

AllocationPeak::~AllocationPeak() {
    c10::SetCPUAllocator(allocator_->inner, kPriority);
}

int64_t AllocationPeak::peak_bytes() const {
    return allocator_->counters->peak.load();
}

}  // namespace cgm::test
