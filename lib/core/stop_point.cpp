#include "core/stop_point.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace cgm {
namespace {

struct StopAt {
    std::string event;  // empty: no stop point is armed
    long        nth = 0;
    std::string part;
};

StopAt armed() {
    const char * spec = std::getenv("CGM_STOP_AT");
    StopAt       s;
    if (spec == nullptr) {
        return s;
    }
    const std::string text  = spec;
    const size_t      colon = text.find(':');
    if (colon == std::string::npos) {
        return s;
    }
    const size_t second = text.find(':', colon + 1);
    s.nth   = std::strtol(text.substr(colon + 1, second - colon - 1).c_str(), nullptr, 10);
    s.part  = second == std::string::npos ? "" : text.substr(second + 1);
    s.event = s.nth > 0 ? text.substr(0, colon) : "";
    return s;
}

}  // namespace

void stop_point(const char * event, const std::string & path) {
    static const StopAt     at = armed();
    static std::atomic<long> reached{ 0 };
    if (at.event.empty() || at.event != event || path.find(at.part) == std::string::npos) {
        return;
    }
    if (++reached == at.nth) {
        std::raise(SIGSTOP);
    }
}

}  // namespace cgm
