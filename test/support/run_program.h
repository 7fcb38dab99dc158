#pragma once
// Runs one of the project's programs from the build's bin folder, capturing its output.
#include <string>

namespace cgm::test {

struct ProgramResult {
    int         exit_code = -1;
    std::string out;
    std::string err;
};

// args are passed through the shell: quote anything with spaces. `prefix` goes before the program
// in the same shell (e.g. "ulimit -f 16;").
ProgramResult run_program(const std::string & program, const std::string & args, const std::string & prefix = "");

// Runs the program with CGM_STOP_AT=stop_at (core/stop_point.h) until it stops itself there, then
// kills it with SIGKILL. Returns true when it was killed there; false when it ended first, with
// what it did in *ended. `env`: more VAR=value assignments for the program.
bool kill_at_stop_point(const std::string & program, const std::string & args, const std::string & stop_at,
                        ProgramResult * ended, const std::string & env = "");

// The program started with CGM_STOP_AT=stop_at and `env`, once it has stopped itself there: pid()
// > 0 until kill(); 0 when it ended first (what it did in ended()). The destructor kills it.
class StoppedProgram {
  public:
    StoppedProgram(const std::string & program, const std::string & args, const std::string & stop_at,
                   const std::string & env = "");
    ~StoppedProgram();
    StoppedProgram(const StoppedProgram &)             = delete;
    StoppedProgram & operator=(const StoppedProgram &) = delete;
    int                   pid() const { return pid_; }
    const ProgramResult & ended() const { return ended_; }
    void                  kill();  // SIGKILL, and waits for it

  private:
    int           pid_ = 0;
    ProgramResult ended_;
};

}  // namespace cgm::test
