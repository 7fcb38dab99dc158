#pragma once
// What every program shares: common flags, logging, and turning failures into one clear line.
#include "cli/config_flags.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace cgm {

struct CommonOptions {
    int         threads   = 0;  // 0: every core (shared among the processes of a run on this machine)
    std::string device    = "cpu";
    uint64_t    seed      = 0;
    std::string log_level = "info";
    // Programs that run on several processes (add_process_options); the others refuse to.
    bool        several_processes = false;
    double      dist_timeout      = 1800;  // seconds a collective waits for the other processes
};

// "q,v" -> {"q", "v"} (empty items dropped).
std::vector<std::string> split_list(const std::string & text);

// Adds --threads, --device, --seed, --log-level and --config (TOML file with the same flags, see
// config_flags.h).
void add_common_options(CLI::App & app, CommonOptions & options);

// For programs that run data-parallel when started by torchrun, srun or scripts/launch (the
// environment of dist/world_env.h): --dist-timeout.
void add_process_options(CLI::App & app, CommonOptions & options);

// Parses argv, applies the common options (and joins the other processes of the run), runs body. Returns the exit code: 0 on success, 1 on
// an error (one line on stderr: "<program>: error: <what>", "<program>[rank R]: error: <what>" on
// several processes), 2 on bad flags. On several processes, `options.device` "cuda" becomes
// "cuda:LOCAL_RANK" and only rank 0 logs below warnings.
int run_program(CLI::App & app, CommonOptions & options, int argc, char ** argv,
                const std::function<void()> & body);

}  // namespace cgm
