#pragma once
// --config FILE: flags from a TOML file (see config_file.h) for those not given on the command line.
#include <CLI/CLI.hpp>

namespace cgm {

// Type names that mark the flags naming files or folders (add_option(...)->type_name(kPathType)):
// relative paths in a config file are taken from the file's folder, so a config works from any
// folder. kNamedPathType: NAME=PATH, the part after '=' is the path.
inline constexpr const char * kPathType      = "PATH";
inline constexpr const char * kNamedPathType = "NAME=PATH";

// Adds --config FILE. Its entries go through each flag's own checks; a wrong key, type or value is
// a CLI::ConfigError "FILE:LINE: key: problem". Flags given on the command line win.
void add_config_option(CLI::App & app);

}  // namespace cgm
