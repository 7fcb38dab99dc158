#include "cli/program.h"

#include "core/error.h"
#include "core/progress_line.h"
#include "cli/run_settings.h"
#include "io/run_record.h"
#include "core/runtime.h"
#include "dist/world.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <sstream>
#include <thread>

namespace cgm {
namespace {

std::string first_line(const std::string & s) {
    return s.substr(0, s.find('\n'));
}

// "<program>: error: <what>" on stderr in one write: the processes of a run share their stderr,
// and a line written in pieces would interleave with theirs.
void print_error(const std::string & name, const std::string & what) {
    const std::string line    = name + ": error: " + what + "\n";
    const ssize_t     written = ::write(STDERR_FILENO, line.data(), line.size());
    static_cast<void>(written);  // nothing to do if stderr is gone
}

size_t edit_distance(const std::string & a, const std::string & b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0]          = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t above = row[j];
            row[j]             = std::min({ row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1) });
            diagonal           = above;
        }
    }
    return row[b.size()];
}

// The first argument CLI11 could not place that looks like a flag, as "unknown flag --bse (did you
// mean --base?)"; empty when there is none. Named before any other parse error, which it may cause
// (a misspelt required flag reads as "--base is required").
std::string unknown_flag(const CLI::App & app) {
    for (const std::string & arg : app.remaining()) {
        if (arg.size() < 2 || arg[0] != '-') {
            continue;
        }
        const std::string flag = arg.substr(0, arg.find('='));
        std::string       closest;
        size_t            best = 3;  // suggest only a near miss
        for (const CLI::Option * option : app.get_options()) {
            for (const std::string & name : option->get_lnames()) {
                if (const size_t d = edit_distance(flag, "--" + name); d < best) {
                    best    = d;
                    closest = "--" + name;
                }
            }
        }
        return "unknown flag " + flag + (closest.empty() ? "" : " (did you mean " + closest + "?)");
    }
    return "";
}

}  // namespace

std::vector<std::string> split_list(const std::string & text) {
    std::vector<std::string> out;
    std::stringstream        in(text);
    for (std::string item; std::getline(in, item, ',');) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

void add_common_options(CLI::App & app, CommonOptions & options) {
    add_config_option(app);
    app.add_option("--threads", options.threads, "CPU threads for tensor math (0: every core)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--device", options.device, "cpu or cuda[:N]")->capture_default_str();
    app.add_option("--seed", options.seed, "Random seed")->capture_default_str();
    app.add_flag("--overwrite", "Replace an output folder holding another kind of output or another run's settings");
    app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str()
        ->check(CLI::IsMember({ "trace", "debug", "info", "warn", "error", "off" }));
}

void add_process_options(CLI::App & app, CommonOptions & options) {
    options.several_processes = true;
    app.add_option("--dist-timeout", options.dist_timeout,
                   "On several processes (torchrun, srun, scripts/launch): seconds to wait for the others in a collective")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
}

int run_program(CLI::App & app, CommonOptions & options, int argc, char ** argv,
                const std::function<void()> & body) {
    std::string name = app.get_name();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp & e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp & e) {
        return app.exit(e);
    } catch (const CLI::ConfigError & e) {  // names the file, line and key itself
        print_error(name, first_line(e.what()));
        return 2;
    } catch (const CLI::ParseError & e) {
        const std::string unknown = unknown_flag(app);
        std::string       what    = unknown.empty() ? first_line(e.what()) : unknown;
        // CLI11's words for a flag given twice: "--steps: At Most 1 required but received 2".
        const std::string twice = ": At Most 1 required but received ";
        if (const size_t at = what.find(twice); at != std::string::npos) {
            what = what.substr(0, at) + ": given " + what.substr(at + twice.size()) + " times; give it once";
        }
        print_error(name, what + " (see --help)");
        return 2;
    }
    auto logger = std::make_shared<spdlog::logger>(
        name, progress_aware_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    // Past a file-size limit (ulimit -f), writes fail with EFBIG and the program reports which file,
    // instead of dying of SIGXFSZ with nothing said.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
        const WorldEnv world = read_world_env();
        if (world.size > 1) {
            if (!options.several_processes) {
                throw Error("runs as one process only, but was started as rank " + std::to_string(world.rank) + " of " +
                            std::to_string(world.size) + " (WORLD_SIZE/RANK, or SLURM_PROCID of an srun step, in the environment)");
            }
            name += "[rank " + std::to_string(world.rank) + "]";
            if (world.rank != 0) {  // rank 0 tells how the run goes; the others only what goes wrong
                spdlog::set_pattern("[%H:%M:%S] rank " + std::to_string(world.rank) + " %^%l%$ %v");
                spdlog::set_level(std::max(spdlog::level::warn, spdlog::level::from_str(options.log_level)));
            }
            if (options.device == "cuda") {  // one GPU per process; where each sees only its own, that one
                options.device = "cuda:" + std::to_string(at::getNumGPUs() == 1 ? 0 : world.local_rank);
            } else if (options.device.rfind("cuda:", 0) == 0 && world.local_size > 1) {
                fail("--device", options.device + " would put the " + std::to_string(world.local_size) +
                                     " processes of this machine on one GPU; give --device cuda (each takes cuda:LOCAL_RANK)");
            }
        }
        const int cores = static_cast<int>(std::thread::hardware_concurrency());
        set_threads(options.threads > 0 ? options.threads : std::max(1, cores / world.local_size));
        if (world.size > 1) {  // alone, --device is the program's business (prepare-data ignores it)
            dist::init(world, std::chrono::milliseconds(static_cast<int64_t>(options.dist_timeout * 1000)), parse_device(options.device));
        }
        set_current_run(run_record_of(app));
        // The output folder's checks that do not depend on settings (an input, another kind of
        // output, files no program wrote) fail before any work; the settings are compared when
        // the program writes, once it has taken a model's saved settings. Rank 0 alone writes.
        if (const CLI::Option * out = app.get_option_no_throw("--out"); out != nullptr && out->count() > 0 && dist::is_main()) {
            claim_output_folder(out->results().front(), *current_run(), /*resuming=*/true);
        }
        body();
        dist::finish();
        return 0;
    } catch (const c10::Error & e) {
        print_error(name, first_line(e.what_without_backtrace()));
    } catch (const std::exception & e) {
        print_error(name, first_line(e.what()));
    }
    return 1;
}

}  // namespace cgm
