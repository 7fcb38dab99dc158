#include "perf/watched_child.h"

#include "core/error.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

extern char ** environ;

namespace cgm {
namespace {

int64_t resident_bytes(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string   line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoll(line.substr(6)) * 1024;  // "VmRSS:   123456 kB"
        }
    }
    return 0;
}

// Reads what is there; false at end of file.
bool drain(int fd, std::string & into) {
    char          buffer[65536];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
        into.append(buffer, static_cast<size_t>(n));
        return true;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN);
}

}  // namespace

WatchedOutcome run_watched(const std::vector<std::string> & argv, int64_t limit_bytes) {
    int out_pipe[2], err_pipe[2];
    if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) {
        fail(argv.front(), std::string("cannot create a pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    for (const int fd : { out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1] }) {
        posix_spawn_file_actions_addclose(&actions, fd);
    }
    std::vector<char *> args;
    for (const std::string & a : argv) {
        args.push_back(const_cast<char *>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_t     pid     = 0;
    const int spawned = ::posix_spawn(&pid, argv.front().c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (spawned != 0) {
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        fail(argv.front(), std::string("cannot start: ") + std::strerror(spawned));
    }

    WatchedOutcome result;
    pollfd         fds[2] = { { out_pipe[0], POLLIN, 0 }, { err_pipe[0], POLLIN, 0 } };
    int            open   = 2;
    while (open > 0) {
        ::poll(fds, 2, 20);
        for (pollfd & p : fds) {
            if (p.fd >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
                !drain(p.fd, p.fd == out_pipe[0] ? result.out : result.err)) {
                ::close(p.fd);
                p.fd = -1;
                --open;
            }
        }
        const int64_t rss = resident_bytes(pid);
        result.max_rss    = std::max(result.max_rss, rss);
        if (limit_bytes > 0 && rss > limit_bytes && !result.over_limit) {
            result.over_limit = true;
            ::kill(pid, SIGKILL);
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    return result;
}

}  // namespace cgm
