#include "cli/program.h"

#include "core/error.h"
#include "cli/run_settings.h"
#include "core/runtime.h"

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <sstream>

namespace cgm {
namespace {

std::string first_line(const std::string & s) {
    return s.substr(0, s.find('\n'));
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

int run_program(CLI::App & app, const CommonOptions & options, int argc, char ** argv,
                const std::function<void()> & body) {
    const std::string name = app.get_name();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp & e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp & e) {
        return app.exit(e);
    } catch (const CLI::ConfigError & e) {  // names the file, line and key itself
        std::cerr << name << ": error: " << first_line(e.what()) << "\n";
        return 2;
    } catch (const CLI::ParseError & e) {
        std::cerr << name << ": error: " << first_line(e.what()) << " (see --help)\n";
        return 2;
    }
    auto logger = spdlog::stderr_color_mt(name);
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    try {
        set_threads(options.threads);
        set_current_run(run_record_of(app));
        body();
        return 0;
    } catch (const c10::Error & e) {
        std::cerr << name << ": error: " << first_line(e.what_without_backtrace()) << "\n";
    } catch (const std::exception & e) {
        std::cerr << name << ": error: " << first_line(e.what()) << "\n";
    }
    return 1;
}

}  // namespace cgm
