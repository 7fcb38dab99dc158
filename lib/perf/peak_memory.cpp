#include "perf/peak_memory.h"

#include <cstdio>
#include <fstream>
#include <malloc.h>
#include <string>

// gperftools' tcmalloc, when linked (CGM_TCMALLOC), keeps freed pages for reuse: they must go back
// before the reset, or the next part is charged with the previous part's peak.
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));

namespace cgm {

bool reset_peak_memory() {
    if (MallocExtension_ReleaseFreeMemory != nullptr) {
        MallocExtension_ReleaseFreeMemory();
    } else {
        malloc_trim(0);
    }
    std::FILE * f = std::fopen("/proc/self/clear_refs", "w");
    if (f == nullptr) {
        return false;
    }
    const bool written = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && written;
}

int64_t peak_memory_bytes() {
    std::ifstream in("/proc/self/status");
    std::string   line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   123456 kB"
        }
    }
    return 0;
}

}  // namespace cgm
