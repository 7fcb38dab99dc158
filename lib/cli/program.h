#pragma once
// What every program shares: common flags, logging, and turning failures into one clear line.
#include "cli/config_flags.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace cgm {

struct CommonOptions {
    int         threads   = 0;  // 0: every core
    std::string device    = "cpu";
    uint64_t    seed      = 0;
    std::string log_level = "info";
};

// "q,v" -> {"q", "v"} (empty items dropped).
std::vector<std::string> split_list(const std::string & text);

// Adds --threads, --device, --seed, --log-level and --config (TOML file with the same flags, see
// config_flags.h).
void add_common_options(CLI::App & app, CommonOptions & options);

// Parses argv, applies the common options, runs body. Returns the exit code: 0 on success, 1 on
// an error (one line on stderr: "<program>: error: <what>"), 2 on bad flags.
int run_program(CLI::App & app, const CommonOptions & options, int argc, char ** argv,
                const std::function<void()> & body);

}  // namespace cgm
