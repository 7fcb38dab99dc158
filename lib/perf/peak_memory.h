#pragma once
// The process's peak resident memory (VmHWM), and a way to measure it for one part of a run: the
// allocator's free pages go back to the system, then Linux restarts the high-water mark from the
// memory in use now (/proc/self/clear_refs, "5").
#include <cstdint>

namespace cgm {

// Returns false when the kernel does not allow the reset (peak_memory_bytes() then keeps counting
// from the start of the process).
bool reset_peak_memory();

// VmHWM of /proc/self/status in bytes; 0 where it cannot be read.
int64_t peak_memory_bytes();

}  // namespace cgm
