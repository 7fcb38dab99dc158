#pragma once
// The most CPU tensor memory held at once while the tracker lives: LibTorch's CPU allocator is
// wrapped, so every tensor allocated meanwhile is counted until it is freed. Deterministic, unlike
// the process's resident memory: what a test uses to pin down how memory grows with a shape.
#include <cstdint>
#include <memory>

namespace cgm::test {

class AllocationPeak {
  public:
    AllocationPeak();
    ~AllocationPeak();
    AllocationPeak(const AllocationPeak &)             = delete;
    AllocationPeak & operator=(const AllocationPeak &) = delete;

    int64_t peak_bytes() const;  // the most bytes held at once by tensors allocated since construction

  private:
    struct Counting;
    std::unique_ptr<Counting> allocator_;
};

}  // namespace cgm::test
