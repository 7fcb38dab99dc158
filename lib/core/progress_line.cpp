#include "core/progress_line.h"

#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace cgm {
namespace {

// The line on screen (empty: none); guarded by the mutex, as log lines come from any thread.
std::mutex  g_mutex;
std::string g_line;

void draw_locked() {
    std::fprintf(stderr, "\r\033[K%s", g_line.c_str());
    std::fflush(stderr);
}

void clear_locked() {
    if (!g_line.empty()) {
        std::fprintf(stderr, "\r\033[K");
    }
}

class ProgressAwareSink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit ProgressAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  protected:
    void sink_it_(const spdlog::details::log_msg & msg) override {
        const std::lock_guard<std::mutex> lock(g_mutex);
        clear_locked();
        inner_->log(msg);
        inner_->flush();
        if (!g_line.empty()) {
            draw_locked();
        }
    }
    void flush_() override { inner_->flush(); }
    // The inner sink formats: patterns go to it.
    void set_pattern_(const std::string & pattern) override { inner_->set_pattern(pattern); }
    void set_formatter_(std::unique_ptr<spdlog::formatter> formatter) override { inner_->set_formatter(std::move(formatter)); }

  private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

std::string duration_text(double seconds) {
    const auto s = static_cast<long long>(seconds + 0.5);
    char       text[32];
    if (s >= 3600) {
        std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    } else if (s >= 60) {
        std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
    } else {
        std::snprintf(text, sizeof text, "%llds", s);
    }
    return text;
}

ProgressLine::ProgressLine(int64_t total, std::string what)
    : total_(total), what_(std::move(what)), started_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() {
    const std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_line.empty()) {
        std::fprintf(stderr, "\n");
        g_line.clear();
    }
}

void ProgressLine::update(int64_t done, const std::string & detail) {
    if (!::isatty(STDERR_FILENO)) {
        return;
    }
    if (first_done_ < 0) {
        first_done_ = done - 1;  // the first update ends the first unit of this process's work
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double rate    = static_cast<double>(done - first_done_) / std::max(seconds, 1e-9);
    const int    width   = 30;
    const auto   filled  = static_cast<int>(width * done / std::max<int64_t>(total_, 1));
    char         head[128];
    std::snprintf(head, sizeof head, "[%s%s] %lld/%lld %s  %.2f %s/s  ", std::string(static_cast<size_t>(filled), '=').c_str(),
                  std::string(static_cast<size_t>(width - filled), ' ').c_str(), static_cast<long long>(done),
                  static_cast<long long>(total_), what_.c_str(), rate, what_.c_str());
    const std::lock_guard<std::mutex> lock(g_mutex);
    g_line = head + duration_text(static_cast<double>(total_ - done) / std::max(rate, 1e-9)) + " left  " + detail;
    draw_locked();
}

std::shared_ptr<spdlog::sinks::sink> progress_aware_sink(std::shared_ptr<spdlog::sinks::sink> inner) {
    return std::make_shared<ProgressAwareSink>(std::move(inner));
}

}  // namespace cgm
