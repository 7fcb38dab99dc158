// The programs' failure modes end to end: each bad input exits 1 and each bad flag 2, with ONE
// line on stderr naming the file or flag and the problem, and leaves no output behind (a failed
// --resume leaves the earlier run's folder byte for byte as it was).
#include "support/cli_workspace.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

}  // namespace

TEST_CASE("lora-finetune --resume with a corrupted trainer_state.json or a missing or truncated checkpoint exits 1 "
          "naming the file and changes no file of the run",
          "[cli][cli-errors]") {
    const std::unique_ptr<Workspace> w = make_workspace("lora-finetune --resume errors");
    if (!w) {
        return;
    }
    const std::string run    = train_lora(*w, "lora");
    const std::string state  = run + "/trainer_state.json";
    const std::string good   = read_bytes(state);
    const std::string resume = "--base " + w->base + " --out " + run + " --steps 2 --resume" + w->train_args();
    const std::string never  = w->file("never-written");  // no new folder may appear anywhere

    // Malformed JSON (a cut-off file).
    write_bytes(state, good.substr(0, good.size() / 2));
    auto before = snapshot(run);
    require_failure(run_program("lora-finetune", resume), kBadInput, { state + ": malformed JSON" }, never);
    REQUIRE(snapshot(run) == before);

    // Valid JSON that is not a trainer state (a field of the wrong type).
    nlohmann::json s = nlohmann::json::parse(good);
    s["step"]        = "one";
    write_bytes(state, s.dump(2));
    before = snapshot(run);
    require_failure(run_program("lora-finetune", resume), kBadInput, { state + ": not a trainer state" }, never);
    REQUIRE(snapshot(run) == before);

    // An unfinished run (a finished one never reads its checkpoint), as if killed after step 1,
    // whose checkpoint file is truncated, then missing.
    s             = nlohmann::json::parse(good);
    s["finished"] = false;
    write_bytes(state, s.dump(2));
    const std::string ckpt  = run + "/" + s.at("checkpoint").get<std::string>();
    const std::string bytes = read_bytes(ckpt);
    REQUIRE(bytes.size() > 8);
    // The header (8-byte little-endian length, then JSON) survives, half the tensor data does not.
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) {
        header = header * 256 + static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    }
    REQUIRE(8 + header < bytes.size());
    write_bytes(ckpt, bytes.substr(0, 8 + header + (bytes.size() - 8 - header) / 2));
    before = snapshot(run);
    require_failure(run_program("lora-finetune", resume), kBadInput, { ckpt + ": ", "past the end" }, never);
    REQUIRE(snapshot(run) == before);

    fs::remove(ckpt);
    before = snapshot(run);
    require_failure(run_program("lora-finetune", resume), kBadInput, { ckpt + ": cannot open" }, never);
    REQUIRE(snapshot(run) == before);
}

TEST_CASE("prepare-data --format scienceqa exits 1 naming problems.json or pid_splits.json when either is malformed",
          "[cli][cli-errors]") {
    TempDir           tmp;
    const std::string problems = tmp.file("problems.json");
    const std::string splits   = tmp.file("pid_splits.json");
    const std::string out      = tmp.file("out");
    const std::string args     = "--format scienceqa --input " + problems + " --out " + out + " --log-level warn";
    const std::string good = R"({"7": {"question": "Which is a metal?", "choices": ["iron", "wood"], "answer": 0, "image": null},
                                 "9": {"question": "Which is a gas?", "choices": ["rock", "air"], "answer": 1, "image": null}})";

    SECTION("problems.json is cut off") {
        write_bytes(problems, good.substr(0, good.size() / 2));
        require_failure(run_program("prepare-data", args), kBadInput, { problems + ": malformed JSON" }, out);
    }
    SECTION("problems.json is not an object of problems") {
        write_bytes(problems, "[1, 2]");
        require_failure(run_program("prepare-data", args), kBadInput, { problems + ": expected an object" }, out);
    }
    SECTION("a problem with a mistyped answer under --strict") {
        write_bytes(problems, R"({"7": {"question": "q", "choices": ["a", "b"], "answer": "zero"}})");
        require_failure(run_program("prepare-data", args + " --strict"), kBadInput,
                        { problems + ":7: answer must be an integer index, got \"zero\"" }, out);
    }
    SECTION("pid_splits.json is cut off") {
        write_bytes(problems, good);
        write_bytes(splits, R"({"train": ["7"], "test": [)");
        require_failure(run_program("prepare-data", args), kBadInput, { splits + ": malformed JSON" }, out);
    }
    SECTION("pid_splits.json is not an object of pid lists") {
        write_bytes(problems, good);
        write_bytes(splits, R"(["7", "9"])");
        require_failure(run_program("prepare-data", args), kBadInput, { splits + ": expected an object" }, out);
    }
    SECTION("a split of pid_splits.json is not a list") {
        write_bytes(problems, good);
        write_bytes(splits, R"({"train": "7", "test": ["9"]})");
        require_failure(run_program("prepare-data", args), kBadInput, { splits + ": 'train' is not a list" }, out);
    }
    SECTION("the same files well formed are accepted, keeping the splits of pid_splits.json") {
        // The control: the failures above come from the malformed part alone.
        write_bytes(problems, good);
        write_bytes(splits, R"({"train": ["7"], "val": [], "test": ["9"]})");
        const ProgramResult r = run_program("prepare-data", args);
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        const nlohmann::json info = read_json(out + "/dataset.json");
        REQUIRE(info["counts"]["train"] == 1);
        REQUIRE(info["counts"]["val"] == 0);
        REQUIRE(info["counts"]["test"] == 1);
        REQUIRE_THAT(read_bytes(out + "/test.jsonl"), Contains("\"id\":\"9\""));
    }
}

TEST_CASE("a malformed TOML --config (syntax error, unknown key, wrong type) exits 2 naming the file or flag",
          "[cli][cli-errors]") {
    const std::unique_ptr<Workspace> w = make_workspace("--config errors");
    if (!w) {
        return;
    }
    const std::string config = w->file("run.toml");
    const std::string out    = w->file("lora");
    const std::string args   = "--base " + w->base + " --out " + out + " --config " + config + w->train_args();

    // Control: a well-formed config with the same keys runs (so the failures below are the config's).
    write_bytes(config, "rank = 2\nsteps = 1\ntargets = \"q,v\"\n");
    ProgramResult r = run_program("lora-finetune", args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(read_json(out + "/adapter_config.json").at("r") == 2);
    fs::remove_all(out);

    // A line that is not `key = value`.
    write_bytes(config, "rank = 2\nsteps 1\n");
    require_failure(run_program("lora-finetune", args), kBadFlags, { config + ":2: ", "steps 1" }, out);
    // A key no flag has.
    write_bytes(config, "rank = 2\nsteps = 1\nfrobnicate = 3\n");
    require_failure(run_program("lora-finetune", args), kBadFlags, { config + ":3: unknown key 'frobnicate'" }, out);
    // A number flag given a string.
    write_bytes(config, "rank = \"two\"\nsteps = 1\n");
    require_failure(run_program("lora-finetune", args), kBadFlags, { config + ":1: rank: 'two' is not a positive integer" },
                    out);
}

TEST_CASE("evaluate --fixed-weights of the wrong length or not numbers, and cgm-train with two experts of one name, "
          "exit 1 naming the flag, writing nothing",
          "[cli][cli-errors]") {
    const std::unique_ptr<Workspace> w = make_workspace("--fixed-weights and --expert errors");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora");
    const std::string out  = w->file("out");
    // Two experts (the same adapter under two names) on the base.
    const auto args = [&](const std::string & weights) {
        return "--model " + w->base + " --expert a=" + lora + " --expert b=" + lora + " --fixed-weights " + weights +
               " --data " + w->data + "/test.jsonl --out " + out + " --max-target-len 4 --log-level warn";
    };
    require_failure(run_program("evaluate", args("0.5")), kBadInput, { "--fixed-weights: 1 weights for 2 experts" }, out);
    require_failure(run_program("evaluate", args("0.2,0.3,0.5")), kBadInput, { "--fixed-weights: 3 weights for 2 experts" },
                    out);
    require_failure(run_program("evaluate", args("0.5,half")), kBadInput, { "--fixed-weights: 'half' is not a number" }, out);
    require_failure(run_program("evaluate", args("0.5,0.5x")), kBadInput, { "--fixed-weights: '0.5x' is not a number" }, out);

    // Two experts named 'a' (the second is never loaded: the names are checked first).
    const ProgramResult r = run_program("cgm-train", "--base " + w->base + " --expert a=" + lora + " --expert a=" +
                                                          w->file("other") + " --out " + out + " --steps 1" + w->train_args());
    require_failure(r, kBadInput, { "--expert: two experts are named 'a'" }, out);
}

TEST_CASE("every program exits 2 on an unknown flag, naming it on one line, writing nothing", "[cli][cli-errors]") {
    TempDir           tmp;
    const std::string out = tmp.file("out");
    // Each program with its required flags (never read: parsing fails first) and one unknown flag.
    const std::vector<std::pair<std::string, std::string>> programs = {
        { "prepare-data", "--format wordnet --out " + out },
        { "save-base", "--init-config x.json --out " + out },
        { "lora-finetune", "--base b --train t --val v --out " + out },
        { "finetune", "--base b --train t --val v --out " + out },
        { "cgm-train", "--base b --expert a=x --train t --val v --out " + out },
        { "evaluate", "--model m --data d --out " + out },
    };
    for (const auto & [program, args] : programs) {
        INFO(program);
        require_failure(run_program(program, args + " --frobnicate 3"), kBadFlags, { program + ": error: ", "--frobnicate" },
                        out);
    }
    // A near miss is suggested, also where the misspelt flag is a required one; a flag given twice says so.
    require_failure(run_program("lora-finetune", "--bse b --train t --val v --out " + out), kBadFlags,
                    { "unknown flag --bse (did you mean --base?)" }, out);
    require_failure(run_program("lora-finetune", "--base b --train t --val v --out " + out + " --steps 1 --steps 2"),
                    kBadFlags, { "--steps: given 2 times; give it once" }, out);
    // A known flag with a value outside its choices is a bad flag too.
    require_failure(run_program("evaluate", "--model m --data d --out " + out + " --scoring best"), kBadFlags,
                    { "--scoring", "best" }, out);
}

TEST_CASE("text-only flags given with an image base exit 1 naming the flag, writing nothing", "[cli][cli-errors]") {
    TempDir           tmp;
    const std::string base = tmp.file("beit"), out = tmp.file("out");
    const nlohmann::json config = { { "model_type", "beit" },   { "hidden_size", 16 },  { "num_hidden_layers", 1 },
                                    { "num_attention_heads", 2 }, { "intermediate_size", 32 }, { "image_size", 16 },
                                    { "patch_size", 8 },         { "num_labels", 2 } };
    write_bytes(tmp.file("beit.json"), config.dump());
    const ProgramResult saved = run_program("save-base", "--init-config " + tmp.file("beit.json") + " --out " + base +
                                                             " --log-level warn");
    INFO("save-base: " << saved.err);
    REQUIRE(saved.exit_code == 0);
    // The data is never read: the flags are checked as soon as the base's modality is known.
    const std::string train = " --base " + base + " --train d/train.safetensors --val d/val.safetensors --out " + out;
    require_failure(run_program("lora-finetune", train + " --prompt unifiedqa"), kBadInput,
                    { "--prompt", "text models (T5) only" }, out);
    require_failure(run_program("finetune", train + " --max-source-len 64"), kBadInput, { "--max-source-len" }, out);
    require_failure(run_program("cgm-train", train + " --expert a=x --expert b=y --q-chunk 4"), kBadInput, { "--q-chunk" }, out);
    require_failure(run_program("lora-finetune", train + " --val-scoring rank"), kBadInput, { "--val-scoring" }, out);
    require_failure(run_program("evaluate", "--model " + base + " --data d/test.safetensors --out " + out + " --scoring rank"),
                    kBadInput, { "--scoring" }, out);
}

TEST_CASE("cgm-train refuses gate flags that do not fit together, exit 1 naming the flag, writing nothing", "[cli][cli-errors]") {
    TempDir           tmp;
    const std::string out = tmp.file("out");
    // Nothing is read: the combination is checked before the base and data are loaded.
    const std::string two = "--base b --expert a=x --expert b=y --train t.jsonl --val v.jsonl --out " + out;
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        { " --combiner top-k", { "--combiner", "--mix output" } },
        { " --sample-sim-same 0.5", { "--sample-sim-same", "--mix output" } },
        { " --ideal-gate 1", { "--ideal-gate", "--mix output" } },
        { " --temperature-decay 0.1", { "--temperature-decay", "--mix output" } },
        { " --gate xlora --importance 0.2", { "--importance", "X-LoRA" } },
        { " --mix output --gate xlora", { "--mix output", "--gate xlora" } },
        { " --mix output --gate-targets q", { "--gate-targets" } },
        { " --mix output --combiner top-k --top-k 3", { "--top-k", "3", "2 experts" } },
        { " --mix output --top-k 2", { "--top-k", "--combiner top-k" } },
        { " --mix output --dual-temperature", { "--dual-temperature", "--train-experts" } },
        { " --mix output --combiner stochastic --train-experts --dual-temperature", { "--dual-temperature", "combiner" } },
        { " --mix output --temperature-decay-start 3", { "--temperature-decay-start", "--temperature-decay" } },
        { " --mix output --escort --temperature 2", { "--temperature", "--escort" } },
    };
    for (const auto & [flags, needles] : cases) {
        INFO(flags);
        require_failure(run_program("cgm-train", two + flags + " --log-level warn"), kBadInput, needles, out);
    }
    require_failure(run_program("cgm-train", two + " --mix output --combiner vote"), kBadFlags, { "--combiner", "vote" }, out);
}
