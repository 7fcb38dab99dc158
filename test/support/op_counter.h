#pragma once
// Counts the ATen operators of one name that run on this thread while the counter lives (a
// RecordFunction callback): what a test uses to pin down that a path makes no device sync.
#include <ATen/record_function.h>

#include <cstdint>
#include <string>

namespace cgm::test {

class OpCounter {
  public:
    explicit OpCounter(std::string name);  // e.g. "aten::_local_scalar_dense", what .item() runs
    ~OpCounter();
    OpCounter(const OpCounter &)             = delete;
    OpCounter & operator=(const OpCounter &) = delete;

    int64_t count() const;

  private:
    at::CallbackHandle handle_;
};

}  // namespace cgm::test
