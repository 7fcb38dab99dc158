#pragma once
// One progress line at the bottom of a terminal: rewritten in place while work goes on; a log
// line clears it first and it is drawn again below. Nothing is drawn when stderr is not a
// terminal (logs, CI), so redirected output stays plain lines.
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace cgm {

class ProgressLine {
  public:
    // `what` names the unit of `total` ("steps").
    ProgressLine(int64_t total, std::string what);
    ~ProgressLine();  // the line stays, ended
    ProgressLine(const ProgressLine &)             = delete;
    ProgressLine & operator=(const ProgressLine &) = delete;

    // "[=====     ] 120/400 steps  2.10 steps/s  2m13s left  <detail>"
    void update(int64_t done, const std::string & detail);

  private:
    int64_t                               total_;
    std::string                           what_;
    std::chrono::steady_clock::time_point started_;
    int64_t                               first_done_ = -1;  // the count when the clock started (a resumed run)
};

// "2m13s", "1h05m", "45s".
std::string duration_text(double seconds);

// A sink that clears the progress line before each log line of `inner` and draws it again after.
std::shared_ptr<spdlog::sinks::sink> progress_aware_sink(std::shared_ptr<spdlog::sinks::sink> inner);

}  // namespace cgm
