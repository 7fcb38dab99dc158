#pragma once
// Runs one of the project's programs from the build's bin folder, capturing its output.
#include <string>

namespace cgm::test {

struct ProgramResult {
    int         exit_code = -1;
    std::string out;
    std::string err;
};

// args are passed through the shell: quote anything with spaces.
ProgramResult run_program(const std::string & program, const std::string & args);

}  // namespace cgm::test
