#pragma once
// What the command-line tests share: the check of a failed run (exit code, one line on stderr, no
// output left behind), a tiny T5 base and WordNet data to run the programs on, and a one-step LoRA.
#include "support/run_program.h"
#include "support/temp_dir.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cgm::test {

constexpr int kBadInput = 1;
constexpr int kBadFlags = 2;

// Exit code `code`, exactly one line on stderr holding every needle, and neither `out_dir` nor a
// staging folder (out_dir.tmp-*) beside it.
void require_failure(const ProgramResult & r, int code, const std::vector<std::string> & needles,
                     const std::string & out_dir);

// Runs a program that must succeed (exit 0; its stderr shown otherwise).
ProgramResult run_ok(const std::string & program, const std::string & args);

// A tiny base (random T5 whose vocab is the fixture tokenizer's) and WordNet data, in one TempDir.
struct Workspace {
    TempDir     tmp;
    std::string base = tmp.file("base");
    std::string data = tmp.file("data");
    std::string tokenizer;   // the fixture tokenizer's folder
    int64_t     vocab = 0;   // its size (pieces + extra ids)

    // --train/--val and the quick settings every training run here uses.
    std::string train_args() const {
        return " --train " + data + "/train.jsonl --val " + data + "/val.jsonl --batch-size 8 --max-target-len 4"
               " --val-scoring rank --log-level warn";
    }
    std::string file(const std::string & name) const { return tmp.file(name); }
    // Another tiny T5 base in <name> (save-base --init-config), its config changed by `overrides`.
    std::string save_base(const std::string & name, const nlohmann::json & overrides = nlohmann::json::object()) const;
};

// Null when the fixture set has no tokenizer (the caller's tests are then skipped, visibly).
std::unique_ptr<Workspace> make_workspace(const std::string & what);

// A finished one-step LoRA run in w/<name> (adapter, trainer_state.json, checkpoint/) on `base`
// (default w.base), with `extra_args` added to lora-finetune's flags.
std::string train_lora(const Workspace & w, const std::string & name, const std::string & extra_args = "",
                       const std::string & base = "");

nlohmann::json read_json(const std::string & path);

// Every file under dir (relative path -> bytes): what a refused run must leave unchanged.
std::map<std::string, std::string> snapshot(const std::string & dir);

}  // namespace cgm::test
