#pragma once
// The run record of a program from its parsed flags (see io/run_record.h).
#include "io/run_record.h"

#include <CLI/CLI.hpp>

namespace cgm {

// Program, kind (from the program), every flag's value as given or its default, the data files
// with their hashes, and the folders and files the run reads.
RunRecord run_record_of(const CLI::App & app);

}  // namespace cgm
