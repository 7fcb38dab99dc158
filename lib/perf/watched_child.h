#pragma once
// Runs a program in a child process and watches its resident memory, so a measurement that may
// not fit (dense attention over 32k tokens) fails alone, named, instead of taking the machine's
// memory and this process with it.
#include <cstdint>
#include <string>
#include <vector>

namespace cgm {

struct WatchedOutcome {
    int         exit_code  = -1;     // when it exited
    int         signal     = 0;      // when a signal ended it
    bool        over_limit = false;  // SIGKILLed here: its resident memory passed the limit
    int64_t     max_rss    = 0;      // the most resident memory seen while polling (bytes)
    std::string out;                 // its standard output
    std::string err;                 // its standard error
};

// argv[0] is the program's path. Polls the child's VmRSS every 20 ms; SIGKILLs it when the RSS
// passes limit_bytes (0: no limit). An Error when it cannot be started.
WatchedOutcome run_watched(const std::vector<std::string> & argv, int64_t limit_bytes);

}  // namespace cgm
