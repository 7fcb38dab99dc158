#include "support/run_program.h"

#include "support/temp_dir.h"

#include <sys/wait.h>

#include <cstdlib>

namespace cgm::test {

ProgramResult run_program(const std::string & program, const std::string & args) {
    TempDir           capture;
    const std::string cmd = std::string(CGM_BIN_DIR) + "/" + program + " " + args + " --threads 1 > " +
                            capture.file("out") + " 2> " + capture.file("err") + " < /dev/null";
    const int     status = std::system(cmd.c_str());
    ProgramResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out       = read_bytes(capture.file("out"));
    r.err       = read_bytes(capture.file("err"));
    return r;
}

}  // namespace cgm::test
