#include "cli/program.h"

#include "core/error.h"
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
    app.set_config("--config", "", "Read flags from a TOML file (keys are flag names without dashes)");
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.add_option("--threads", options.threads, "CPU threads for tensor math (0: every core)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--device", options.device, "cpu or cuda[:N]")->capture_default_str();
    app.add_option("--seed", options.seed, "Random seed")->capture_default_str();
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
    } catch (const CLI::ConfigError & e) {
        const CLI::Option * config = app.get_config_ptr();
        const std::string   file   = config && config->count() ? config->as<std::string>() : "--config";
        std::cerr << name << ": error: " << file << ": " << first_line(e.what()) << "\n";
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
