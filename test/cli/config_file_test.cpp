// --config FILE: relative paths read from the file's folder, every mistake named by file, line
// and key (exit 2, one line), keys with - or _, one [program] table per program, command-line
// flags first. Most cases parse flags in this process; the last ones run the programs.
#include "cli/program.h"
#include "support/fixtures.h"
#include "support/run_program.h"
#include "support/temp_dir.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Flags of each kind the programs have, as lora-finetune would add them.
struct Flags {
    CLI::App                 app{ "config file test", "lora-finetune" };
    CommonOptions            common;
    std::string              base, out, dtype = "f32";
    std::vector<std::string> train, experts;
    int64_t                  max_target_len = 64;
    double                   dropout        = 0;
    bool                     resume         = false;

    Flags() {
        app.add_option("--base", base)->type_name(kPathType);
        app.add_option("--out", out)->type_name(kPathType)->required();
        app.add_option("--train", train)->type_name(kPathType);
        app.add_option("--expert", experts)->type_name(kNamedPathType);
        app.add_option("--dtype", dtype)->check(CLI::IsMember({ "f32", "bf16" }));
        app.add_option("--max-target-len", max_target_len)->check(CLI::PositiveNumber);
        app.add_option("--dropout", dropout)->check(CLI::Range(0.0, 0.99));
        app.add_flag("--resume", resume);
        add_common_options(app, common);
    }

    // Parses the arguments; the config error's message, or "" when they parse.
    std::string parse(const std::vector<std::string> & args) {
        std::vector<const char *> argv = { "lora-finetune" };
        for (const auto & a : args) {
            argv.push_back(a.c_str());
        }
        try {
            app.parse(static_cast<int>(argv.size()), argv.data());
        } catch (const CLI::ConfigError & e) {
            return e.what();
        }
        return "";
    }
};

// The error of a config file holding `text` (with --out given on the command line).
std::string config_error(const std::string & config, const std::string & text) {
    write_bytes(config, text);
    Flags flags;
    return flags.parse({ "--out", "o", "--config", config });
}

std::string normal(const std::string & path) {
    return fs::path(path).lexically_normal().string();
}

}  // namespace

TEST_CASE("relative paths in a --config file are read from its folder; absolute and command-line paths are kept",
          "[cli][config-file]") {
    TempDir tmp;
    fs::create_directories(tmp.file("configs"));
    const std::string config = tmp.file("configs/run.toml");
    write_bytes(config, "base = \"../bases/tiny\"\nout = \"runs/a\"\ntrain = [\"a.jsonl\", \"/data/b.jsonl\"]\n"
                        "expert = [\"x=experts/x\", \"y=/abs/y\"]\n");
    Flags flags;
    REQUIRE(flags.parse({ "--config", config }).empty());
    REQUIRE(flags.base == normal(tmp.file("bases/tiny")));
    REQUIRE(flags.out == normal(tmp.file("configs/runs/a")));
    REQUIRE(flags.train == std::vector<std::string>{ normal(tmp.file("configs/a.jsonl")), "/data/b.jsonl" });
    REQUIRE(flags.experts == std::vector<std::string>{ "x=" + normal(tmp.file("configs/experts/x")), "y=/abs/y" });

    Flags given;  // on the command line: relative to the current folder, and ahead of the file
    REQUIRE(given.parse({ "--out", "here/o", "--config", config }).empty());
    REQUIRE(given.out == "here/o");
    REQUIRE(given.base == normal(tmp.file("bases/tiny")));
}

TEST_CASE("--config keys may be written with - or _; arrays and booleans work; command-line flags win",
          "[cli][config-file]") {
    TempDir           tmp;
    const std::string config = tmp.file("run.toml");
    write_bytes(config, "out = 'o'\nmax_target_len = 8\ndtype = \"bf16\"\nresume = true\ndropout = 0.5\n"
                        "train = [\n  \"a.jsonl\",  # comments and line breaks inside arrays\n  \"b.jsonl\",\n]\n");
    Flags flags;
    REQUIRE(flags.parse({ "--config", config }).empty());
    REQUIRE(flags.max_target_len == 8);
    REQUIRE(flags.dtype == "bf16");
    REQUIRE(flags.resume);
    REQUIRE(flags.dropout == 0.5);
    REQUIRE(flags.train == std::vector<std::string>{ normal(tmp.file("a.jsonl")), normal(tmp.file("b.jsonl")) });

    Flags given;
    REQUIRE(given.parse({ "--config", config, "--max-target-len", "4", "--dtype", "f32" }).empty());
    REQUIRE(given.max_target_len == 4);
    REQUIRE(given.dtype == "f32");

    REQUIRE(config_error(config, "max_target_len = 8\nmax-target-len = 4\n") ==
            config + ":2: 'max-target-len' given twice (first on line 1)");
}

TEST_CASE("an unknown --config key names the file, line and key", "[cli][config-file]") {
    TempDir           tmp;
    const std::string config = tmp.file("run.toml");
    REQUIRE(config_error(config, "# a comment\n\ndtyp = \"bf16\"\n") == config + ":3: unknown key 'dtyp'");
    REQUIRE(config_error(config, "config = \"other.toml\"\n") == config + ":1: unknown key 'config'");
}

TEST_CASE("a --config value the flag does not take names the file, line, key, value and what it takes",
          "[cli][config-file]") {
    TempDir           tmp;
    const std::string config = tmp.file("run.toml");
    const std::vector<std::pair<std::string, std::string>> cases = {
        { "threads = \"two\"", "threads: 'two' is not a non-negative integer" },
        { "threads = 2.5", "threads: '2.5' is not a non-negative integer" },
        { "max-target-len = 0", "max-target-len: '0' is not a positive integer" },
        { "dtype = \"f16\"", "dtype: 'f16' is not one of f32,bf16" },
        { "dropout = 2", "dropout: '2' is not a number in [0 - 0.99]" },
        { "resume = \"yes\"", "resume: 'yes' is not true or false" },
        { "base = 3", "base: 3 is not a path (paths are strings in quotes)" },
        { "dtype = [\"f32\", \"bf16\"]", "dtype: takes one value, not an array" },
        { "train = []", "train: an empty array sets nothing" },
    };
    for (const auto & [line, message] : cases) {
        INFO(line);
        REQUIRE(config_error(config, "# line 1\n" + line + "\n") == config + ":2: " + message);
    }
}

TEST_CASE("a --config file drives a pipeline: top-level keys for every program, a [program] table for one",
          "[cli][config-file]") {
    TempDir           tmp;
    const std::string config = tmp.file("pipeline.toml");
    write_bytes(config, "out = \"top\"\nmax-target-len = 8\ndtype = \"bf16\"\n"
                        "[lora_finetune]\nmax_target_len = 16\n"
                        "[evaluate]  # other programs' tables are not this program's business\n"
                        "scoring = \"rank\"\ndtype = \"f32\"\n"
                        "[cgm-train]\nexpert = [\"a=x\"]\n");
    Flags flags;
    REQUIRE(flags.parse({ "--config", config }).empty());
    REQUIRE(flags.out == normal(tmp.file("top")));
    REQUIRE(flags.max_target_len == 16);
    REQUIRE(flags.dtype == "bf16");
    REQUIRE(flags.experts.empty());

    REQUIRE_THAT(config_error(config, "out = \"o\"\n[lora-fintune]\n"),
                 Contains(config + ":2: unknown table [lora-fintune] (tables are program names: "));
    REQUIRE(config_error(config, "[evaluate]\n[lora-finetune]\n[evaluate]\n") ==
            config + ":3: table [evaluate] appears twice (first on line 1)");
}

TEST_CASE("a --config file outside the TOML subset is refused naming the file and line", "[cli][config-file]") {
    TempDir           tmp;
    const std::string config = tmp.file("run.toml");
    const std::vector<std::pair<std::string, std::string>> cases = {
        { "out = \"o\"\nsteps 1\n", ":2: expected 'key = value' (keys are flag names), not 'steps 1'" },
        { "a.b = 1\n", ":1: expected 'key = value' (keys are flag names), not 'a.b = 1'" },
        { "out = \"o\n", ":1: string without its closing quote on 'out = \"o'" },
        { "out = \"a\\qb\"\n", ":1: unsupported escape '\\q' (write '\\\\' for a backslash)" },
        { "out = \"o\" \"p\"\n", ":1: unexpected '\"p\"' at the end of 'out = \"o\" \"p\"'" },
        { "max-target-len = 010\n", ":1: '010' is not a value (strings need quotes)" },
        { "dtype = bf16\n", ":1: 'bf16' is not a value (strings need quotes)" },
        { "out =\n", ":1: expected a value on 'out ='" },
        { "train = [\"a\", [\"b\"]]\n", ":1: arrays inside arrays are not supported" },
        { "train = [\n  \"a\",\n  \"b\" \"c\"\n]\n", ":3: expected ',' or ']' in the array on '  \"b\" \"c\"'" },
        { "[[lora-finetune]]\n", ":1: arrays of tables ([[...]]) are not supported" },
        { "[lora-finetune.x]\n", ":1: expected '[program]', not '[lora-finetune.x]'" },
        { "out = '''o'''\n", ":1: multi-line strings are not supported" },
    };
    for (const auto & [text, message] : cases) {
        INFO(text);
        REQUIRE(config_error(config, text) == config + message);
    }
    Flags flags;
    REQUIRE(flags.parse({ "--out", "o", "--config", tmp.file("missing.toml") }) ==
            tmp.file("missing.toml") + ": cannot open (missing or unreadable)");
}

TEST_CASE("save-base runs from a config file in another folder; a bad key exits 2 with one line naming file, "
          "line and key",
          "[cli][config-file]") {
    const auto fixture = fixture_or_skip("t5", "save-base --config from another folder");
    if (!fixture) {
        return;
    }
    TempDir tmp;
    fs::create_directories(tmp.file("configs"));
    const std::string model  = fs::relative(fixture->path(fixture->manifest["model_dir"]), tmp.file("configs")).string();
    const std::string config = tmp.file("configs/save.toml");
    write_bytes(config, "hf = \"" + model + "\"\nout = \"../base\"\ndtype = \"bf16\"\n");
    ProgramResult r = run_program("save-base", "--config " + config + " --log-level warn");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(tmp.file("base/config.json")));

    write_bytes(config, "hf = \"" + model + "\"\nout = \"../base2\"\ndtyp = \"bf16\"\n");
    r = run_program("save-base", "--config " + config);
    REQUIRE(r.exit_code == 2);
    REQUIRE(r.err == "save-base: error: " + config + ":3: unknown key 'dtyp'\n");

    write_bytes(config, "hf = \"" + model + "\"\nout = \"../base2\"\nprobe_epochs = \"two\"\n");
    r = run_program("save-base", "--config " + config);
    REQUIRE(r.exit_code == 2);
    REQUIRE(r.err == "save-base: error: " + config + ":3: probe_epochs: 'two' is not a non-negative integer\n");
    REQUIRE(!fs::exists(tmp.file("base2")));
}

TEST_CASE("the shipped configs/*.toml hold only their program's flags, with values of the right types",
          "[cli][config-file]") {
    const std::vector<std::string> programs = { "prepare-data", "save-base", "lora-finetune", "finetune", "cgm-train",
                                                "evaluate" };
    int checked = 0;
    for (const auto & entry : fs::directory_iterator(CGM_CONFIGS_DIR)) {
        const std::string file = entry.path().filename().string();
        if (entry.path().extension() != ".toml") {
            continue;
        }
        for (const auto & program : programs) {
            if (file.rfind(program, 0) == 0) {  // named after its program
                INFO(file);
                const ProgramResult r = run_program(program, "--config " + entry.path().string() + " --help");
                INFO(r.err);
                REQUIRE(r.exit_code == 0);
                ++checked;
                break;
            }
        }
    }
    REQUIRE(checked >= 3);
}

TEST_CASE("the shipped pipeline configs (configs/demo, configs/paper) are read by every program they have a table for",
          "[cli][config-file]") {
    int checked = 0;
    for (const auto & entry : fs::recursive_directory_iterator(CGM_CONFIGS_DIR)) {
        if (entry.path().extension() != ".toml" || entry.path().parent_path() == fs::path(CGM_CONFIGS_DIR)) {
            continue;  // configs/*.toml hold one program's flags (the test above)
        }
        const std::string text = read_bytes(entry.path().string());
        for (size_t at = text.find("\n["); at != std::string::npos; at = text.find("\n[", at + 1)) {
            const std::string program = text.substr(at + 2, text.find(']', at) - at - 2);
            INFO(entry.path().string() << " [" << program << "]");
            const ProgramResult r = run_program(program, "--config " + entry.path().string() + " --help");
            INFO(r.err);
            REQUIRE(r.exit_code == 0);
            ++checked;
        }
    }
    REQUIRE(checked >= 9);  // demo: 3 + 3 tables, paper: 3 + 2
}
