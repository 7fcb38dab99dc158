#include "support/run_program.h"

#include "support/temp_dir.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include <cstdlib>

namespace cgm::test {

namespace {

// The shell command running `program`, its output captured in `capture`.
std::string command(const std::string & program, const std::string & args, const TempDir & capture) {
    return std::string(CGM_BIN_DIR) + "/" + program + " " + args + " --threads 1 > " + capture.file("out") + " 2> " +
           capture.file("err") + " < /dev/null";
}

ProgramResult result_of(int status, const TempDir & capture) {
    ProgramResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out       = read_bytes(capture.file("out"));
    r.err       = read_bytes(capture.file("err"));
    return r;
}

}  // namespace

ProgramResult run_program(const std::string & program, const std::string & args, const std::string & prefix) {
    TempDir           capture;
    const std::string cmd = prefix + command(program, args, capture);
    return result_of(std::system(cmd.c_str()), capture);
}

bool kill_at_stop_point(const std::string & program, const std::string & args, const std::string & stop_at,
                        ProgramResult * ended, const std::string & env) {
    StoppedProgram stopped(program, args, stop_at, env);
    if (stopped.pid() == 0) {
        *ended = stopped.ended();
        return false;
    }
    stopped.kill();
    return true;
}

namespace {

int wait_for(pid_t pid, int options) {
    int status = 0;
    while (::waitpid(pid, &status, options) < 0 && errno == EINTR) {
    }
    return status;
}

}  // namespace

StoppedProgram::StoppedProgram(const std::string & program, const std::string & args, const std::string & stop_at,
                               const std::string & env) {
    TempDir           capture;
    // The shell becomes the program (exec), with the variables set there: after fork() the child
    // of a threaded process may only call what is async-signal-safe.
    const std::string cmd = "CGM_STOP_AT='" + stop_at + "' " + env + " exec " + command(program, args, capture);
    const pid_t       pid = ::fork();
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char *>(nullptr));
        ::_exit(127);
    }
    const int status = wait_for(pid, WUNTRACED);
    if (WIFSTOPPED(status)) {
        pid_ = pid;
    } else {
        ended_ = result_of(status, capture);
    }
}

StoppedProgram::~StoppedProgram() {
    kill();
}

void StoppedProgram::kill() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        wait_for(pid_, 0);
        pid_ = 0;
    }
}

}  // namespace cgm::test
