// Output folders keep their word: every program writes run.json (what the folder is, its settings,
// its data with their hashes, the files it wrote); no program replaces another kind of output,
// another run's settings or one of its own inputs without --overwrite; a model's settings travel to
// evaluate; --resume refuses changed settings or data and can extend a finished run.
#include "core/sha256.h"
#include "support/cli_workspace.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A failed run that left `dir` exactly as it was: exit 1, one stderr line holding every needle.
void require_refusal(const ProgramResult & r, const std::vector<std::string> & needles, const std::string & dir,
                     const std::map<std::string, std::string> & before) {
    INFO("exit code " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == kBadInput);
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    for (const auto & needle : needles) {
        REQUIRE_THAT(r.err, Contains(needle));
    }
    REQUIRE(snapshot(dir) == before);
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 examples", "[unit][run-folder]") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("every output folder holds a run.json naming its program, kind, settings, data and files", "[cli][run-folder]") {
    const std::unique_ptr<Workspace> w = make_workspace("run.json");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora", " --lr 0.002");
    const nlohmann::json run = read_json(lora + "/run.json");
    CHECK(run["program"] == "lora-finetune");
    CHECK(run["kind"] == "lora");
    CHECK(run["settings"]["lr"] == "0.002");
    CHECK(run["settings"]["rank"].is_string());  // defaults are recorded too
    CHECK(!run["finished"].get<std::string>().empty());
    REQUIRE(run["data"].size() == 2);
    CHECK(run["data"][0]["sha256"] == sha256_file(run["data"][0]["path"].get<std::string>()));
    const auto files = run["files"].get<std::vector<std::string>>();
    for (const auto & [file, _] : snapshot(lora)) {
        if (file != "run.json") {
            CHECK(std::find(files.begin(), files.end(), file) != files.end());
        }
    }
    CHECK(read_json(w->base + "/run.json")["kind"] == "base");
    CHECK(read_json(w->data + "/run.json")["kind"] == "dataset");
    run_ok("evaluate", "--model " + lora + " --data " + w->data + "/test.jsonl --out " + w->file("eval") + " --log-level warn");
    CHECK(read_json(w->file("eval") + "/run.json")["kind"] == "evaluation");
}

TEST_CASE("no program replaces another kind of output, another run or its own input without --overwrite",
          "[cli][run-folder]") {
    const std::unique_ptr<Workspace> w = make_workspace("output folder refusals");
    if (!w) {
        return;
    }
    const std::string lora   = train_lora(*w, "lora");
    const auto        before = snapshot(lora);
    const std::string test   = " --data " + w->data + "/test.jsonl --log-level warn";

    // evaluate --out being its own --model would delete the adapter; refused before any work (the
    // data file that does not exist is never opened).
    require_refusal(run_program("evaluate", "--model " + lora + " --out " + lora + test), { "is also an input of this run" },
                    lora, before);
    require_refusal(run_program("evaluate", "--model " + lora + " --out " + lora + " --data " + w->file("none.jsonl")),
                    { "is also an input of this run" }, lora, before);
    require_refusal(run_program("evaluate", "--model " + lora + " --out " + lora + test + " --overwrite"),
                    { "is also an input of this run" }, lora, before);
    // A base written over a LoRA run.
    require_refusal(run_program("save-base", "--init-config " + w->file("base.json") + " --tokenizer " + w->tokenizer +
                                                 " --out " + lora + " --log-level warn"),
                    { "holds a lora written by lora-finetune", "--overwrite" }, lora, before);
    // Full fine-tuning over a LoRA run: refused; with --overwrite the adapter is gone and the folder is a model.
    const std::string finetune = "--base " + w->base + " --out " + lora + " --steps 1" + w->train_args();
    require_refusal(run_program("finetune", finetune), { "holds a lora written by lora-finetune" }, lora, before);
    run_ok("finetune", finetune + " --overwrite");
    CHECK(!fs::exists(lora + "/adapter_config.json"));
    CHECK(!fs::exists(lora + "/adapter_model.safetensors"));
    CHECK(read_json(lora + "/run.json")["kind"] == "model");
    run_ok("evaluate", "--model " + lora + test + " --out " + w->file("eval"));
    CHECK(read_json(w->file("eval") + "/metrics.json")["model_kind"] != "lora");

    // Another evaluation's settings are not replaced silently; the same command may run again.
    const auto eval_before = snapshot(w->file("eval"));
    require_refusal(run_program("evaluate", "--model " + lora + test + " --out " + w->file("eval") + " --scoring rank"),
                    { "holds another evaluate run", "--scoring generate there, rank now" }, w->file("eval"), eval_before);
    run_ok("evaluate", "--model " + lora + test + " --out " + w->file("eval"));
    run_ok("evaluate", "--model " + lora + test + " --out " + w->file("eval") + " --scoring rank --overwrite");

    // A malformed run.json: refused, saying --overwrite replaces it; with --overwrite, replaced.
    const std::string run_json = w->file("eval") + "/run.json";
    write_bytes(run_json, "{");
    const auto corrupt = snapshot(w->file("eval"));
    require_refusal(run_program("evaluate", "--model " + lora + test + " --out " + w->file("eval")),
                    { run_json + ": malformed JSON", "pass --overwrite to replace" }, w->file("eval"), corrupt);
    run_ok("evaluate", "--model " + lora + test + " --out " + w->file("eval") + " --overwrite");
    CHECK(read_json(run_json)["program"] == "evaluate");

    // A file no program wrote is never deleted.
    write_bytes(w->file("eval") + "/notes.txt", "mine");
    const auto with_notes = snapshot(w->file("eval"));
    require_refusal(run_program("evaluate", "--model " + lora + test + " --out " + w->file("eval") + " --overwrite"),
                    { "notes.txt: was not written by evaluate" }, w->file("eval"), with_notes);
}

TEST_CASE("evaluate takes prompt, target, lengths and padding from the model's run.json unless given", "[cli][run-folder]") {
    const std::unique_ptr<Workspace> w = make_workspace("settings travel with the model");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora", " --target letter --prompt unifiedqa --padding max-length --max-source-len 48");
    const std::string test = "--model " + lora + " --data " + w->data + "/test.jsonl --scoring generate --log-level warn";
    run_ok("evaluate", test + " --out " + w->file("saved"));
    run_ok("evaluate", test + " --out " + w->file("given") + " --target letter --prompt unifiedqa --max-target-len 4"
                                                          " --padding max-length --max-source-len 48");
    run_ok("evaluate", test + " --out " + w->file("other") + " --target text");
    const auto saved = read_json(w->file("saved") + "/metrics.json"), given = read_json(w->file("given") + "/metrics.json");
    CHECK(saved["overall"] == given["overall"]);
    CHECK(read_bytes(w->file("saved") + "/predictions.csv") == read_bytes(w->file("given") + "/predictions.csv"));
    const auto settings = read_json(w->file("saved") + "/run.json")["settings"];
    CHECK(settings["prompt"] == "unifiedqa");
    CHECK(settings["target"] == "letter");
    CHECK(settings["max-target-len"] == "4");
    CHECK(settings["padding"] == "max-length");
    CHECK(settings["max-source-len"] == "48");
    CHECK(read_json(w->file("other") + "/run.json")["settings"]["target"] == "text");  // a given flag wins
}

TEST_CASE("--resume refuses changed settings (--best-metric too) or data, and extends a finished run", "[cli][run-folder]") {
    const std::unique_ptr<Workspace> w = make_workspace("--resume checks");
    if (!w) {
        return;
    }
    const std::string lora   = train_lora(*w, "lora");
    const std::string args   = "--base " + w->base + " --out " + lora + w->train_args() + " --resume";
    const auto        before = snapshot(lora);
    require_refusal(run_program("lora-finetune", args + " --steps 1 --rank 4"),
                    { "--rank 8 there, 4 now", "only --steps, --epochs, --patience, --log-every, --save-every" }, lora, before);
    require_refusal(run_program("lora-finetune", args + " --steps 1 --lr 0.1"), { "--lr" }, lora, before);
    require_refusal(run_program("lora-finetune", args + " --steps 1 --best-metric loss"), { "--best-metric" }, lora, before);
    CHECK(read_json(lora + "/trainer_state.json")["best_metric_name"] == "val_accuracy");
    CHECK(read_json(train_lora(*w, "by-loss", " --best-metric loss") + "/trainer_state.json")["best_metric_name"] == "val_loss");

    // Changed training data.
    const std::string train = w->data + "/train.jsonl";
    const std::string bytes = read_bytes(train);
    write_bytes(train, bytes + bytes.substr(0, bytes.find('\n') + 1));
    require_refusal(run_program("lora-finetune", args + " --steps 1"), { "train.jsonl: changed since the run" }, lora, before);
    write_bytes(train, bytes);

    // Growing --steps extends the finished run.
    run_ok("lora-finetune", args + " --steps 3");
    CHECK(read_json(lora + "/trainer_state.json")["step"] == 3);
    CHECK(read_json(lora + "/run.json")["settings"]["steps"] == "3");
    const auto extended = snapshot(lora);
    require_refusal(run_program("lora-finetune", args + " --steps 2"), { "--steps", "can only grow" }, lora, extended);
}

TEST_CASE("metrics.json records the experts, the fixed weights and --merge of a static mixture", "[cli][run-folder]") {
    const std::unique_ptr<Workspace> w = make_workspace("metrics.json of a mixture");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora");
    run_ok("evaluate", "--model " + w->base + " --expert a=" + lora + " --expert b=" + lora + " --fixed-weights 0.7,0.3 --merge"
                       " --data " + w->data + "/test.jsonl --out " + w->file("eval") + " --log-level warn");
    const nlohmann::json metrics = read_json(w->file("eval") + "/metrics.json");
    CHECK(metrics["experts"] == nlohmann::json{ "a", "b" });
    CHECK(metrics["fixed_weights"] == "0.7,0.3");
    CHECK(metrics["merge"] == true);
    CHECK(read_json(w->file("eval") + "/run.json")["settings"]["expert"] == nlohmann::json{ "a=" + lora, "b=" + lora });
}
