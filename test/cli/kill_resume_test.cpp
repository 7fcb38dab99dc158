// Real kills and failing writes: lora-finetune, finetune and cgm-train killed with SIGKILL during
// a step, after an evaluation, and while the state, a checkpoint or the model is being written
// leave only whole files behind, and --resume ends with the files an uninterrupted run writes,
// byte for byte. With writes failing (a file-size limit, an unwritable folder) every program ends
// with one line naming the file and the cause, the last checkpoint stays, and --resume goes on.
#include "io/safetensors.h"
#include "support/cli_workspace.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct Trainer {
    std::string program;
    std::string args;     // besides --out
    std::string weights;  // the model file it writes
};

// The three training programs on the workspace's base; cgm-train mixes two one-step LoRA experts.
std::vector<Trainer> trainers(const Workspace & w) {
    const std::string e1 = train_lora(w, "expert-1", "--targets q,v --seed 1");
    const std::string e2 = train_lora(w, "expert-2", "--targets q,wo --seed 2");
    return { { "lora-finetune", "--base " + w.base + " --targets q,v", "adapter_model.safetensors" },
             { "finetune", "--base " + w.base, "model.safetensors" },
             { "cgm-train", "--base " + w.base + " --expert a=" + e1 + " --expert b=" + e2, "gate.safetensors" } };
}

bool is_temporary(const fs::path & p) {
    return p.filename().string().find(".tmp-") != std::string::npos;
}

std::vector<std::string> temporary_files(const std::string & dir) {
    std::vector<std::string> found;
    for (const auto & entry : fs::recursive_directory_iterator(dir)) {
        if (is_temporary(entry.path())) {
            found.push_back(entry.path().string());
        }
    }
    return found;
}

// Every file under a final name in `dir` is whole: JSON parses, safetensors open and every tensor
// reads; trainer_state.json names a checkpoint that is there. Temporary files may be present (a
// write under way when the kill came).
void require_whole(const std::string & dir) {
    for (const auto & entry : fs::recursive_directory_iterator(dir)) {
        const fs::path & p = entry.path();
        if (!entry.is_regular_file() || is_temporary(p)) {
            continue;
        }
        INFO(p.string());
        if (p.extension() == ".json") {
            REQUIRE_NOTHROW(nlohmann::json::parse(read_bytes(p.string())));
        } else if (p.extension() == ".safetensors") {
            const SafetensorsReader reader(p.string());
            for (const auto & name : reader.names()) {
                REQUIRE(reader.tensor(name).numel() >= 0);
            }
        }
    }
    const std::string state = dir + "/trainer_state.json";
    if (fs::exists(state)) {
        const std::string checkpoint = read_json(state).at("checkpoint").get<std::string>();
        REQUIRE((checkpoint.empty() || fs::exists(dir + "/" + checkpoint)));
    }
}

// What an uninterrupted run is compared with: the model, the last checkpoint (weights and
// optimizer state) and the metrics, byte for byte.
void require_same_result(const std::string & dir, const std::string & reference, const std::string & weights) {
    REQUIRE(temporary_files(dir).empty());
    REQUIRE(read_bytes(dir + "/" + weights) == read_bytes(reference + "/" + weights));
    const nlohmann::json state = read_json(dir + "/trainer_state.json");
    const nlohmann::json want  = read_json(reference + "/trainer_state.json");
    REQUIRE(state.at("step") == want.at("step"));
    REQUIRE(state.at("history") == want.at("history"));
    REQUIRE(state.at("checkpoint") == want.at("checkpoint"));
    const std::string checkpoint = state.at("checkpoint").get<std::string>();
    REQUIRE(read_bytes(dir + "/" + checkpoint) == read_bytes(reference + "/" + checkpoint));
    REQUIRE(read_bytes(dir + "/metrics.csv") == read_bytes(reference + "/metrics.csv"));
}

// Exit 1 and one error line on stderr holding both needles (warnings may come before it: a plot
// that could not be drawn).
void require_one_error(const ProgramResult & r, const std::string & names, const std::string & cause) {
    INFO("exit code " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == kBadInput);
    std::istringstream       lines(r.err);
    std::vector<std::string> errors;
    for (std::string line; std::getline(lines, line);) {
        if (line.find(": error: ") != std::string::npos) {
            errors.push_back(line);
        }
    }
    REQUIRE(errors.size() == 1);
    REQUIRE_THAT(errors.front(), Contains(names) && Contains(cause));
}

}  // namespace

TEST_CASE("Training killed with SIGKILL in a step, after an evaluation or while writing leaves whole files; --resume "
          "ends byte for byte like an uninterrupted run",
          "[cli][kill]") {
    const std::unique_ptr<Workspace> w = make_workspace("kills");
    if (!w) {
        return;
    }
    // Four steps, an evaluation every two, a checkpoint after each step (the newest two kept).
    const std::string schedule = " --steps 4 --eval-every 2 --save-every 1 --save-total-limit 2" + w->train_args();
    // Where each kill comes: the first run.json and trainer state half-written (nothing in place
    // yet); the 3rd step's backward pass done; the 1st evaluation done, its model not saved; the
    // 2nd checkpoint, the 3rd trainer state and the first model file half-written.
    for (const Trainer & t : trainers(*w)) {
        const std::vector<std::string> stops = { "write:1:run.json", "write:1:trainer_state.json", "step:3", "eval:1",
                                                 "write:2:checkpoint/state-", "write:3:trainer_state.json",
                                                 "write:1:" + t.weights };
        const std::string reference = w->file(t.program + "-whole");
        run_ok(t.program, t.args + " --out " + reference + schedule);
        for (size_t i = 0; i < stops.size(); ++i) {
            INFO(t.program << " killed at " << stops[i]);
            const std::string out  = w->file(t.program + "-killed-" + std::to_string(i));
            const std::string args = t.args + " --out " + out + schedule;
            ProgramResult     ended;
            const bool        killed = kill_at_stop_point(t.program, args, stops[i], &ended);
            INFO("ended without reaching the stop point: exit " << ended.exit_code << ", stderr: " << ended.err);
            REQUIRE(killed);
            require_whole(out);
            run_ok(t.program, args + " --resume");
            require_same_result(out, reference, t.weights);
        }
    }
}

TEST_CASE("With writes failing past a file-size limit, programs end with one line naming the file and the cause; the "
          "last checkpoint stays and --resume finishes once writes work",
          "[cli][disk-full]") {
    const std::unique_ptr<Workspace> w = make_workspace("full disks");
    if (!w) {
        return;
    }
    // ulimit -f counts 512-byte blocks in dash, 1 KB in bash: 4 or 8 KB, less than any checkpoint
    // here (a failing run.json or state fails the same way, before anything changes).
    const std::string full     = "ulimit -f 8;";
    const std::string schedule = " --eval-every 2" + w->train_args();
    for (const Trainer & t : trainers(*w)) {
        INFO(t.program);
        const std::string reference = w->file(t.program + "-whole");
        run_ok(t.program, t.args + " --out " + reference + " --steps 4" + schedule);

        const std::string out = w->file(t.program + "-full");
        run_ok(t.program, t.args + " --out " + out + " --steps 2" + schedule);
        const nlohmann::json before = read_json(out + "/trainer_state.json");
        const std::string    kept   = read_bytes(out + "/" + before.at("checkpoint").get<std::string>());

        const ProgramResult r = run_program(t.program, t.args + " --out " + out + " --steps 4 --resume" + schedule, full);
        require_one_error(r, out + "/", "File too large");
        REQUIRE(read_json(out + "/trainer_state.json") == before);
        REQUIRE(read_bytes(out + "/" + before.at("checkpoint").get<std::string>()) == kept);
        REQUIRE(temporary_files(out).empty());
        require_whole(out);

        run_ok(t.program, t.args + " --out " + out + " --steps 4 --resume" + schedule);
        require_same_result(out, reference, t.weights);
    }

    // Programs that write one output folder leave none behind.
    const std::string model = w->file("lora-for-eval");
    run_ok("lora-finetune", "--base " + w->base + " --out " + model + " --steps 1" + w->train_args());
    const std::vector<std::pair<std::string, std::string>> writers = {
        { "prepare-data", "--format wordnet --limit 400 --out " + w->file("data-full") },
        { "save-base", "--init-config " + w->base + "/config.json --tokenizer " + w->tokenizer + " --out " + w->file("base-full") },
        { "evaluate", "--model " + model + " --data " + w->data + "/val.jsonl --scoring rank --out " + w->file("eval-full") },
    };
    for (const auto & [program, args] : writers) {
        INFO(program);
        const std::string   out = args.substr(args.rfind(' ') + 1);
        const ProgramResult r   = run_program(program, args + " --log-level warn", "ulimit -f 2;");
        require_one_error(r, out + "/", "File too large");  // the folder's final name, not its staging one
        REQUIRE(!fs::exists(out));
        for (const auto & entry : fs::directory_iterator(w->tmp.path())) {
            REQUIRE_FALSE(is_temporary(entry.path()));
        }
    }
}

TEST_CASE("An output folder that cannot be written is one line naming it and the cause", "[cli][disk-full]") {
    const std::unique_ptr<Workspace> w = make_workspace("unwritable folders");
    if (!w) {
        return;
    }
    // root writes anywhere: the program then runs as nobody, which needs to read the workspace.
    const bool        root   = ::geteuid() == 0;
    const std::string prefix = root ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
    fs::permissions(w->tmp.path(), fs::perms::all, fs::perm_options::add);
    if (root && run_program("lora-finetune", "--help", prefix).exit_code != 0) {
        WARN("SKIPPING: cannot run the programs as an unprivileged user here (setpriv, or the build is not readable by nobody)");
        return;
    }
    const std::string locked = w->file("locked");
    fs::create_directories(locked + "/existing");
    fs::permissions(locked + "/existing", fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
    fs::permissions(locked, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
    for (const std::string & out : { locked + "/new", locked + "/existing" }) {
        INFO(out);
        const ProgramResult r =
            run_program("lora-finetune", "--base " + w->base + " --out " + out + " --steps 1" + w->train_args(), prefix);
        require_one_error(r, out, "Permission denied");
    }
    REQUIRE(fs::is_empty(locked + "/existing"));
    fs::permissions(locked, fs::perms::owner_write, fs::perm_options::add);
    fs::permissions(locked + "/existing", fs::perms::owner_write, fs::perm_options::add);
}
