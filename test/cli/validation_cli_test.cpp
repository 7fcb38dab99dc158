// Inputs that used to run to a silently wrong result, or fail with a message about the wrong file,
// end with one clear line instead: a --targets name that matches no module, contradictory or
// negative mixture weights, a gate over one expert, experts trained on another base, a folder of
// the wrong kind where a base or an expert is expected, a data file of the wrong format; unlabeled
// data reads as predictions without scores, not as accuracy 0. And the
// LoRA flags --use-rslora, --rank-pattern and --alpha-pattern reach adapter_config.json and the
// saved tensors.
#include "io/safetensors.h"
#include "support/cli_workspace.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
namespace fs = std::filesystem;

namespace {

std::string canonical(const std::string & path) {
    return fs::weakly_canonical(path).string();
}

bool ends_with(const std::string & s, const std::string & tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

TEST_CASE("lora-finetune --targets with a name that matches no module exits 1 naming the flag, the name and the "
          "module names, writing nothing",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("--targets validation");
    if (!w) {
        return;
    }
    const std::string out  = w->file("lora");
    const auto        args = [&](const std::string & targets) {
        return "--base " + w->base + " --out " + out + " --steps 1 --targets " + targets + w->train_args();
    };
    // 'Q' used to be dropped without a word: 'v' alone was trained and 'Q' written to adapter_config.json.
    require_failure(run_program("lora-finetune", args("Q,v")), kBadInput,
                    { "--targets Q,v: 'Q' matches no module of the model", "q,k,v,o" }, out);
    require_failure(run_program("lora-finetune", args("Q,v,wx")), kBadInput, { "'Q', 'wx' match no module" }, out);

    // The control: both names known, both adapted.
    train_lora(*w, "lora", "--targets q,v");
    REQUIRE(read_json(out + "/adapter_config.json").at("target_modules") == nlohmann::json({ "q", "v" }));
    const SafetensorsReader tensors(out + "/adapter_model.safetensors");
    size_t q = 0, v = 0;
    for (const auto & name : tensors.names()) {
        q += ends_with(name, ".q.lora_A.weight");
        v += ends_with(name, ".v.lora_A.weight");
    }
    REQUIRE(q == 3);  // encoder self-attention, decoder self- and cross-attention
    REQUIRE(v == 3);
}

TEST_CASE("evaluate --experts-only with --fixed-weights, or a negative weight, exits 1 naming the flag; weights need "
          "not sum to 1",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("--fixed-weights validation");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora");
    const std::string out  = w->file("out");
    const auto        args = [&](const std::string & mixture) {
        return "--model " + w->base + " --expert a=" + lora + " --expert b=" + lora + " " + mixture + " --data " +
               w->data + "/test.jsonl --out " + out + " --max-target-len 4 --scoring rank --log-level warn";
    };
    // --experts-only used to win and the weights to be dropped without a word.
    require_failure(run_program("evaluate", args("--experts-only a --fixed-weights 0.5,0.5")), kBadInput,
                    { "--experts-only", "--fixed-weights", "give one of them" }, out);
    require_failure(run_program("evaluate", args("--fixed-weights 2,-1")), kBadInput,
                    { "--fixed-weights: weight -1 (expert 2) must be finite and >= 0" }, out);
    require_failure(run_program("evaluate", args("--fixed-weights=-0.5,1.5")), kBadInput, { "--fixed-weights", "-0.5" },
                    out);

    // Weights are each expert's multiplier, as in PEFT's add_weighted_adapter: 2,0 is a valid mixture.
    const ProgramResult r = run_program("evaluate", args("--fixed-weights 2,0"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(read_json(out + "/metrics.json").at("model_kind") == "static mixture");
}

TEST_CASE("cgm-train over one expert, or over an expert trained on another base, exits 1 naming the expert",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("cgm-train expert validation");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora");
    const std::string out  = w->file("gate");
    const auto        args = [&](const std::string & experts) {
        return "--base " + w->base + " " + experts + " --out " + out + " --steps 1" + w->train_args();
    };

    // One expert: a gate over it would only ever pick it.
    require_failure(run_program("cgm-train", args("--expert a=" + lora)), kBadInput,
                    { "--expert: a gate mixes at least 2 experts, got 1" }, out);

    // An expert whose adapter_config.json names another base folder, of the same shapes.
    const std::string other    = w->save_base("other-base");
    const std::string stranger = train_lora(*w, "lora-other", "", other);
    require_failure(run_program("cgm-train", args("--expert a=" + lora + " --expert b=" + stranger)), kBadInput,
                    { "--expert b: ", stranger, "trained on base " + canonical(other), "not on --base " + canonical(w->base) },
                    out);

    // An expert whose base is no folder here (a hub name): its tensors are checked against --base,
    // and an error names its file.
    const std::string wide   = w->save_base("wide-base", { { "d_model", 48 } });
    const std::string misfit = train_lora(*w, "lora-wide", "", wide);
    nlohmann::json    config = read_json(misfit + "/adapter_config.json");
    config["base_model_name_or_path"] = "google/t5-wide";
    write_bytes(misfit + "/adapter_config.json", config.dump(2));
    require_failure(run_program("cgm-train", args("--expert a=" + lora + " --expert c=" + misfit)), kBadInput,
                    { misfit + "/adapter_model.safetensors: ", "do not fit weight" }, out);

    // The control: two experts trained on --base train a gate.
    const ProgramResult r = run_program("cgm-train", args("--expert a=" + lora + " --expert b=" + lora));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(out + "/gate_config.json"));
}

TEST_CASE("an adapter, a gate or a dataset given as a base, or a base given as an expert, exits 1 saying what the "
          "folder is and where it goes",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("folder kind validation");
    if (!w) {
        return;
    }
    const std::string lora = train_lora(*w, "lora");
    const std::string gate = w->file("gate");
    const ProgramResult trained = run_program("cgm-train", "--base " + w->base + " --expert a=" + lora + " --expert b=" +
                                                               lora + " --out " + gate + " --steps 1" + w->train_args());
    INFO(trained.err);
    REQUIRE(trained.exit_code == 0);
    const std::string out   = w->file("out");
    const auto        train = [&](const std::string & base) {
        return "--base " + base + " --out " + out + " --steps 1" + w->train_args();
    };

    // Each used to fail with "<folder>/config.json: cannot open".
    require_failure(run_program("lora-finetune", train(lora)), kBadInput,
                    { lora + ": this folder is a LoRA adapter (adapter_config.json); pass it as --model or --expert, "
                             "and its base as --base" },
                    out);
    require_failure(run_program("finetune", train(gate)), kBadInput,
                    { gate + ": this folder is a gate (gate_config.json); pass it as --model" }, out);
    require_failure(run_program("lora-finetune", train(w->data)), kBadInput,
                    { w->data + ": this folder is a dataset (dataset.json from prepare-data)" }, out);
    require_failure(run_program("cgm-train", train(lora) + " --expert a=" + lora + " --expert b=" + lora), kBadInput,
                    { lora + ": this folder is a LoRA adapter" }, out);
    require_failure(run_program("evaluate", "--model " + lora + " --base " + lora + " --data " + w->data +
                                                "/test.jsonl --out " + out + " --log-level warn"),
                    kBadInput, { lora + ": this folder is a LoRA adapter" }, out);
    require_failure(run_program("save-base", "--hf " + lora + " --out " + out + " --log-level warn"), kBadInput,
                    { lora + ": this folder is a LoRA adapter" }, out);

    // A base given as an expert used to fail with "<base>/adapter_config.json: cannot open".
    require_failure(run_program("cgm-train", train(w->base) + " --expert a=" + lora + " --expert b=" + w->base), kBadInput,
                    { "--expert b: " + w->base + ": this folder is a base model (config.json), not a LoRA adapter" }, out);
    require_failure(run_program("evaluate", "--model " + w->base + " --expert a=" + lora + " --expert b=" + gate +
                                                " --data " + w->data + "/test.jsonl --out " + out + " --log-level warn"),
                    kBadInput, { gate + ": this folder is a gate (gate_config.json), not a LoRA adapter" }, out);
}

TEST_CASE("prepare-data on a file of the wrong format exits 1 with the count of skipped records and the first reason",
          "[cli][validation]") {
    TempDir           tmp;
    const std::string data = tmp.file("data.jsonl"), out = tmp.file("out");
    // CommonsenseQA records given as the project's own jsonl: no "question" string, no "choices".
    std::string lines;
    for (int i = 0; i < 12; ++i) {
        lines += R"({"id": "q)" + std::to_string(i) +
                 R"(", "question": {"stem": "Where?", "choices": [{"label": "A", "text": "here"}, {"label": "B", "text": "there"}]}, "answerKey": "A"})" "\n";
    }
    write_bytes(data, lines);
    // The reason used to appear only with --strict.
    require_failure(run_program("prepare-data", "--format mcq-jsonl --input " + data + " --out " + out + " --log-level warn"),
                    kBadInput, { data + ": no usable records (12 skipped; first: " + data + ":1: ", "mistyped field" },
                    out);
    // The same lines read as CommonsenseQA are usable.
    const ProgramResult r =
        run_program("prepare-data", "--format commonsenseqa --input " + data + " --out " + out + " --log-level warn");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
}

TEST_CASE("evaluate on unlabeled records writes predictions and says there is no accuracy, with null scores and loss, "
          "not 0",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("unlabeled data");
    if (!w) {
        return;
    }
    // The test split with every label removed, then with the first record's only.
    const std::string lines = read_bytes(w->data + "/test.jsonl");
    std::string       unlabeled, partly;
    size_t            records = 0;
    for (size_t start = 0, end; (end = lines.find('\n', start)) != std::string::npos; start = end + 1, ++records) {
        nlohmann::json record = nlohmann::json::parse(lines.substr(start, end - start));
        partly += record.dump() + "\n";
        record["label"] = nullptr;
        unlabeled += record.dump() + "\n";
    }
    REQUIRE(records > 1);
    partly = unlabeled.substr(0, unlabeled.find('\n') + 1) + partly.substr(partly.find('\n') + 1);
    write_bytes(w->file("unlabeled.jsonl"), unlabeled);
    write_bytes(w->file("partly.jsonl"), partly);
    const std::string args = "--model " + w->base + " --max-target-len 4 --log-level warn";

    ProgramResult r = run_program("evaluate", args + " --data " + w->file("unlabeled.jsonl") + " --out " + w->file("none"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Matchers::Contains(std::to_string(records) + " examples, none labeled: predictions only, no accuracy"));
    nlohmann::json metrics = read_json(w->file("none") + "/metrics.json");
    CHECK(metrics["overall"]["count"] == 0);
    CHECK(metrics["overall"]["accuracy"].is_null());
    CHECK(metrics["overall"]["squad_f1"].is_null());
    CHECK(metrics["loss"].is_null());
    CHECK(metrics["unlabeled"] == records);
    const std::string predictions = read_bytes(w->file("none") + "/predictions.csv");
    CHECK(std::count(predictions.begin(), predictions.end(), '\n') == static_cast<long>(records) + 1);

    r = run_program("evaluate", args + " --data " + w->file("partly.jsonl") + " --out " + w->file("partly"));
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Matchers::Contains(std::to_string(records) + " examples, " + std::to_string(records - 1) + " labeled, accuracy "));
    metrics = read_json(w->file("partly") + "/metrics.json");
    CHECK(metrics["overall"]["count"] == records - 1);
    CHECK(metrics["overall"]["accuracy"].is_number());
    CHECK(metrics["loss"].is_number());
    CHECK(metrics["unlabeled"] == 1);
}

TEST_CASE("lora-finetune --use-rslora, --rank-pattern and --alpha-pattern reach adapter_config.json and the saved "
          "ranks; malformed values are bad flags",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("LoRA pattern flags");
    if (!w) {
        return;
    }
    // Keys as PEFT's rank_pattern: a regex matched against the end of each module path.
    const std::string lora = train_lora(*w, "patterned",
                                        "--targets q,v --rank 2 --alpha 4 --use-rslora --rank-pattern "
                                        "'v=4,decoder.*EncDecAttention.q=3' --alpha-pattern v=8");
    const nlohmann::json config = read_json(lora + "/adapter_config.json");
    REQUIRE(config.at("use_rslora") == true);
    REQUIRE(config.at("r") == 2);
    REQUIRE(config.at("rank_pattern") == nlohmann::json({ { "v", 4 }, { "decoder.*EncDecAttention.q", 3 } }));
    REQUIRE(config.at("alpha_pattern") == nlohmann::json({ { "v", 8.0 } }));

    const SafetensorsReader tensors(lora + "/adapter_model.safetensors");
    size_t                  checked = 0;
    for (const auto & name : tensors.names()) {
        INFO(name);
        const at::Tensor t    = tensors.tensor(name);
        const bool       is_a = ends_with(name, ".lora_A.weight");
        const std::string module = name.substr(0, name.size() - std::string(".lora_A.weight").size());
        const int64_t rank = ends_with(module, ".v")                                                           ? 4
                             : module.find("decoder.") != std::string::npos && ends_with(module, "EncDecAttention.q") ? 3
                                                                                                                  : 2;
        REQUIRE(t.size(is_a ? 0 : 1) == rank);  // A [r, d_in], B [d_out, r]
        ++checked;
    }
    REQUIRE(checked == 12);  // q and v of 3 attention blocks, A and B each
    // The adapter loads back with those ranks (load_lora checks every one against the config).
    const std::string   out = w->file("eval");
    const ProgramResult r   = run_program("evaluate", "--model " + lora + " --data " + w->data + "/test.jsonl --out " + out +
                                                          " --max-target-len 4 --scoring rank --log-level warn");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);

    const std::string bad  = w->file("bad");
    const auto        args = [&](const std::string & flags) {
        return "--base " + w->base + " --out " + bad + " --steps 1 --targets q,v " + flags + w->train_args();
    };
    require_failure(run_program("lora-finetune", args("--rank-pattern v=x")), kBadFlags,
                    { "--rank-pattern: 'v=x' is not NAME=VALUE with VALUE a positive whole number" }, bad);
    require_failure(run_program("lora-finetune", args("--rank-pattern v=0")), kBadFlags, { "--rank-pattern: 'v=0'" }, bad);
    require_failure(run_program("lora-finetune", args("--rank-pattern v")), kBadFlags, { "--rank-pattern: 'v'" }, bad);
    require_failure(run_program("lora-finetune", args("--rank-pattern 'q[=2'")), kBadFlags,
                    { "--rank-pattern: 'q[' is not a valid regular expression" }, bad);
    require_failure(run_program("lora-finetune", args("--alpha-pattern v=-1")), kBadFlags,
                    { "--alpha-pattern: 'v=-1' is not NAME=VALUE with VALUE a positive number" }, bad);
    require_failure(run_program("lora-finetune", args("--alpha-pattern v=8,v=2")), kBadFlags,
                    { "--alpha-pattern: 'v' is given twice" }, bad);
    // Well formed, but the key sets nothing: it matches no module the adapter targets.
    require_failure(run_program("lora-finetune", args("--rank-pattern wo=4")), kBadInput,
                    { "--rank-pattern: 'wo' matches no module the adapter targets (q,v)" }, bad);
}

TEST_CASE("evaluate --base with a model folder, and save-base --hf with a hub name, exit 1 saying what to do",
          "[cli][validation]") {
    const std::unique_ptr<Workspace> w = make_workspace("--base and --hf validation");
    if (!w) {
        return;
    }
    const std::string out = w->file("out");
    require_failure(run_program("evaluate", "--model " + w->base + " --base " + w->base + " --data " + w->data +
                                                "/test.jsonl --out " + out),
                    kBadInput, { "--base: " + w->base + " is a model folder", "the base of an adapter or gate folder" }, out);
    require_failure(run_program("save-base", "--hf google/flan-t5-small --out " + out), kBadInput,
                    { "google/flan-t5-small: no such folder; --hf reads a local folder",
                      "huggingface-cli download google/flan-t5-small --local-dir DIR" },
                    out);
}
