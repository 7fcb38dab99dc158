// save-base --merge end to end: a LoRA (T5; BEiT with a saved head) or a static mixture of a gate's
// experts folded into the base weights and written as a plain base folder, whose every weight is
// W + s B A (or the saved module), and which evaluate scores as it scores the unmerged adapter;
// what cannot be folded (a learned gate, weights of the wrong length) is refused with one line.
// Also: ranked scoring's per-choice scores in predictions.csv, whose argmax is the prediction.
#include "io/csv.h"
#include "io/safetensors.h"
#include "support/cli_workspace.h"
#include "support/fixtures.h"
#include "support/run_program.h"
#include "support/temp_dir.h"
#include "text/mcq.h"
#include "text/prompt.h"
#include "text/t5_tokenizer.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Merged and unmerged runs differ only by float32 rounding ((W + s B A) x against W x + s B (A x)):
// measured up to ~1e-6 on these models; a wrong merge moves the loss by orders of magnitude more.
constexpr double kLossTolerance  = 1e-5;
constexpr double kScoreTolerance = 1e-5;
constexpr double kWeightTolerance = 1e-6;

void require_ok(const std::string & program, const std::string & args) {
    const ProgramResult r = run_program(program, args + " --log-level warn");
    INFO(program << " " << args << "\nexit code " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
}

// Exit code `code`, one line on stderr holding `needle`, and no output or staging folder.
void require_failure(const std::string & program, const std::string & args, int code, const std::string & needle,
                     const std::string & out_dir) {
    const ProgramResult r = run_program(program, args);
    INFO(program << " " << args << "\nexit code " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == code);
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    REQUIRE_THAT(r.err, Contains(needle));
    REQUIRE(!fs::exists(out_dir));
    for (const auto & entry : fs::directory_iterator(fs::path(out_dir).parent_path())) {
        REQUIRE(entry.path().filename().string().find(fs::path(out_dir).filename().string() + ".tmp-") ==
                std::string::npos);
    }
}

// LoRA scaling alpha / r of an adapter folder (plain LoRA: no rsLoRA, no per-module patterns).
double lora_scaling(const std::string & adapter_dir) {
    const nlohmann::json c = read_json(adapter_dir + "/adapter_config.json");
    REQUIRE(!c.value("use_rslora", false));
    return c["lora_alpha"].get<double>() / c["r"].get<double>();
}

// Every tensor of the merged folder against the base and the adapter: an adapted module's weight is
// W + s B A, a saved module's tensors are the adapter's, everything else is the base's unchanged.
// Returns the largest change from the base (so the caller can see the adapter mattered).
double require_merged_weights(const std::string & base_dir, const std::string & adapter_dir, const std::string & merged_dir) {
    const SafetensorsReader base(base_dir + "/model.safetensors");
    const SafetensorsReader adapter(adapter_dir + "/adapter_model.safetensors");
    const SafetensorsReader merged(merged_dir + "/model.safetensors");
    const double            scaling = lora_scaling(adapter_dir);
    REQUIRE(std::set<std::string>(merged.names().begin(), merged.names().end()) ==
            std::set<std::string>(base.names().begin(), base.names().end()));
    double  largest_change = 0;
    int64_t adapted = 0, saved = 0;
    for (const auto & name : base.names()) {
        INFO(name);
        const at::Tensor w = base.tensor(name), m = merged.tensor(name);
        REQUIRE(m.scalar_type() == at::kFloat);
        REQUIRE(m.sizes() == w.sizes());
        const std::string module = name.substr(0, name.rfind('.'));  // "<module>.weight" -> "<module>"
        const std::string lora   = "base_model.model." + module + ".lora_";
        if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 && adapter.contains(lora + "A.weight")) {
            const at::Tensor expected =
                w + scaling * at::matmul(adapter.tensor(lora + "B.weight"), adapter.tensor(lora + "A.weight"));  // [d_out, d_in]
            REQUIRE((m - expected).abs().max().item<double>() <= kWeightTolerance);
            ++adapted;
        } else if (adapter.contains("base_model.model." + name)) {
            REQUIRE(at::equal(m, adapter.tensor("base_model.model." + name)));
            ++saved;
        } else {
            REQUIRE(at::equal(m, w));
        }
        largest_change = std::max(largest_change, (m - w).abs().max().item<double>());
    }
    REQUIRE(adapted > 0);
    for (const auto & name : adapter.names()) {  // every LoRA pair and saved tensor was found above
        adapted -= name.find(".lora_A.") != std::string::npos;
        saved -= name.find(".lora_") == std::string::npos;
    }
    REQUIRE(adapted == 0);
    REQUIRE(saved == 0);
    return largest_change;
}

// The merged folder is a plain base: the base's config (torch_dtype float32) and side files, no
// adapter or gate file.
void require_plain_base(const std::string & base_dir, const std::string & merged_dir) {
    nlohmann::json expected = read_json(base_dir + "/config.json");
    expected["torch_dtype"] = "float32";
    REQUIRE(read_json(merged_dir + "/config.json") == expected);
    for (const char * absent : { "adapter_config.json", "adapter_model.safetensors", "gate_config.json" }) {
        REQUIRE(!fs::exists(fs::path(merged_dir) / absent));
    }
    for (const auto & entry : fs::directory_iterator(base_dir)) {
        const std::string name = entry.path().filename().string();
        if (name != "config.json" && name != "model.safetensors" && name != "run.json") {  // run.json: who wrote it
            INFO(name);
            REQUIRE(read_bytes(merged_dir + "/" + name) == read_bytes(entry.path().string()));
        }
    }
}

// Two evaluate outputs of the same data: the same predictions (id..correct), the same metrics
// except the loss (within kLossTolerance), and choice scores (ranked scoring) within kScoreTolerance.
void require_same_evaluation(const std::string & a, const std::string & b) {
    const std::vector<CsvRow> pa = read_csv(a + "/predictions.csv"), pb = read_csv(b + "/predictions.csv");
    REQUIRE(pa.size() == pb.size());
    REQUIRE(pa[0] == pb[0]);
    for (size_t i = 1; i < pa.size(); ++i) {
        INFO("row " << i);
        REQUIRE(std::vector<std::string>(pa[i].begin(), pa[i].begin() + 5) ==
                std::vector<std::string>(pb[i].begin(), pb[i].begin() + 5));
        for (size_t j = 5; j < pa[i].size(); ++j) {
            REQUIRE(std::abs(std::stod(pa[i][j]) - std::stod(pb[i][j])) <= kScoreTolerance);
        }
    }
    nlohmann::json ma = read_json(a + "/metrics.json"), mb = read_json(b + "/metrics.json");
    INFO("loss " << ma["loss"] << " / " << mb["loss"]);
    REQUIRE(std::abs(ma["loss"].get<double>() - mb["loss"].get<double>()) <= kLossTolerance);
    for (const char * key : { "overall", "per_domain" }) {
        REQUIRE(ma[key] == mb[key]);
    }
}

double loss_of(const std::string & eval_dir) {
    return read_json(eval_dir + "/metrics.json")["loss"].get<double>();
}

// The splits the text tests evaluate on.
std::string eval_data(const Workspace & w) {
    return w.data + "/val.jsonl " + w.data + "/test.jsonl";
}

// A LoRA trained a few steps with a large learning rate, so that it changes the model's scores.
std::string train_text_lora(const Workspace & w, const std::string & name, const std::string & targets, int seed) {
    const std::string out = w.file(name);
    require_ok("lora-finetune", "--base " + w.base + " --out " + out + " --train " + w.data + "/train.jsonl --val " +
                                    w.data + "/val.jsonl --steps 3 --lr 0.05 --batch-size 8 --max-target-len 4"
                                    " --val-scoring rank --targets " + targets + " --seed " + std::to_string(seed));
    return out;
}

// The text settings the adapters were trained with, given explicitly (evaluate would also take
// them from the run.json of an adapter or of the base merged from it).
std::string evaluate_rank(const std::string & model, const std::string & data, const std::string & out,
                          const std::string & extra = "") {
    require_ok("evaluate", "--model " + model + " --data " + data + " --out " + out +
                               " --scoring rank --max-target-len 4 " + extra);
    return out;
}

// predictions.csv of ranked scoring: one score_<letter> column per choice, each the prediction's
// argmax over them (the first of equal ones).
void require_choice_scores(const std::string & eval_dir, const std::vector<McqRecord> & records) {
    const std::vector<CsvRow> rows = read_csv(eval_dir + "/predictions.csv");
    REQUIRE(rows.size() == records.size() + 1);
    REQUIRE(rows[0] == CsvRow{ "id", "domain", "target", "predicted", "correct", "score_A", "score_B", "score_C", "score_D" });
    for (size_t i = 0; i < records.size(); ++i) {
        const CsvRow & row = rows[i + 1];
        INFO("record " << records[i].id);
        REQUIRE(row[0] == records[i].id);
        REQUIRE(records[i].choices.size() == 4);
        std::vector<double> scores;
        for (size_t j = 5; j < row.size(); ++j) {
            scores.push_back(std::stod(row[j]));
            REQUIRE(std::isfinite(scores.back()));
            REQUIRE(scores.back() <= 0);  // a mean log-probability
        }
        const auto best = static_cast<int64_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
        REQUIRE(row[3] == render_target(records[i], PromptStyle::seed, TargetStyle::text, best));
    }
}

}  // namespace

TEST_CASE("save-base --merge folds a T5 LoRA into the base: W + s B A, a plain base folder, and evaluate "
          "scores it as the adapter; ranked scoring writes every choice's score",
          "[cli][merge-export]") {
    const std::unique_ptr<Workspace> w = make_workspace("save-base --merge of a T5 LoRA");
    if (!w) {
        return;
    }
    const std::string lora   = train_text_lora(*w, "lora", "q,v,wo", 1);
    const std::string merged = w->file("merged");
    require_ok("save-base", "--merge " + lora + " --out " + merged);
    require_plain_base(w->base, merged);
    REQUIRE(require_merged_weights(w->base, lora, merged) > 1e-3);

    const std::string eval_lora   = evaluate_rank(lora, eval_data(*w), w->file("eval-lora"));
    const std::string eval_merged = evaluate_rank(merged, eval_data(*w), w->file("eval-merged"));
    const std::string eval_base   = evaluate_rank(w->base, eval_data(*w), w->file("eval-base"));
    require_same_evaluation(eval_lora, eval_merged);
    REQUIRE(read_json(eval_merged + "/metrics.json")["model_kind"] == "checkpoint");
    // The merged base keeps the adapter's text settings: evaluate takes them without flags.
    REQUIRE(read_json(merged + "/run.json")["settings"]["max-target-len"] == "4");
    require_ok("evaluate", "--model " + merged + " --data " + eval_data(*w) + " --out " + w->file("eval-saved") + " --scoring rank");
    REQUIRE(read_bytes(w->file("eval-saved") + "/predictions.csv") == read_bytes(eval_merged + "/predictions.csv"));
    // The comparison means something: the adapter moves the loss far beyond the tolerance.
    REQUIRE(std::abs(loss_of(eval_lora) - loss_of(eval_base)) > 100 * kLossTolerance);

    const std::vector<McqRecord> records = read_mcq_files({ w->data + "/val.jsonl", w->data + "/test.jsonl" });
    require_choice_scores(eval_lora, records);
    require_choice_scores(eval_merged, records);
    // Other scorings keep today's columns.
    require_ok("evaluate", "--model " + merged + " --data " + eval_data(*w) + " --out " + w->file("eval-generate") +
                               " --scoring generate --max-target-len 4");
    REQUIRE(read_csv(w->file("eval-generate") + "/predictions.csv")[0] ==
            CsvRow{ "id", "domain", "target", "predicted", "correct" });

    // --base names the base instead of adapter_config.json: the same folder from a copy of the base.
    fs::copy(w->base, w->file("base-copy"), fs::copy_options::recursive);
    require_ok("save-base", "--merge " + lora + " --base " + w->file("base-copy") + " --out " + w->file("merged-2"));
    REQUIRE(read_bytes(w->file("merged-2") + "/model.safetensors") == read_bytes(merged + "/model.safetensors"));

    // --out may not replace the adapter or its base.
    const std::map<std::string, std::string> refusals = { { lora, lora + ": is also an input of this run" },
                                                          { w->base, "--out: " + w->base + " is the base of " + lora } };
    for (const auto & [target, message] : refusals) {
        const ProgramResult r = run_program("save-base", "--merge " + lora + " --out " + target);
        INFO("stderr: " << r.err);
        REQUIRE(r.exit_code == 1);
        REQUIRE_THAT(r.err, Contains(message));
    }
    REQUIRE(fs::exists(lora + "/adapter_config.json"));
    REQUIRE(!fs::exists(w->base + "/adapter_config.json"));
}

TEST_CASE("save-base --merge of a gate folder folds a static mixture at --fixed-weights, as evaluate runs it, "
          "and refuses a learned gate or weights of the wrong length",
          "[cli][merge-export]") {
    const std::unique_ptr<Workspace> w = make_workspace("save-base --merge of a gate folder");
    if (!w) {
        return;
    }
    const std::string a    = train_text_lora(*w, "expert-a", "q,v", 2);
    const std::string b    = train_text_lora(*w, "expert-b", "v,wo", 3);
    const std::string gate = w->file("gate");
    require_ok("cgm-train", "--base " + w->base + " --expert a=" + a + " --expert b=" + b + " --train " + w->data +
                                "/train.jsonl --val " + w->data + "/val.jsonl --out " + gate +
                                " --steps 1 --batch-size 8 --max-target-len 4 --val-scoring rank --gate-hidden 4");

    const std::string never = w->file("never-written");
    require_failure("save-base", "--merge " + gate + " --out " + never, 1,
                    gate + ": a trained gate weighs the experts anew for every input and cannot be folded", never);
    require_failure("save-base", "--merge " + gate + " --fixed-weights 0.5 --out " + never, 1,
                    "--fixed-weights: 1 weights for 2 experts", never);
    require_failure("save-base", "--merge " + gate + " --fixed-weights 0.2,0.3,0.5 --out " + never, 1,
                    "--fixed-weights: 3 weights for 2 experts", never);
    require_failure("save-base", "--merge " + gate + " --fixed-weights 0.5,half --out " + never, 1,
                    "--fixed-weights: 'half' is not a number", never);
    require_failure("save-base", "--merge " + a + " --fixed-weights 1 --out " + never, 1,
                    "--fixed-weights: is for a gate folder or a base with --expert experts", never);
    require_failure("save-base", "--merge " + w->base + " --out " + never, 1, "is a model folder: nothing to merge",
                    never);
    require_failure("save-base", "--hf " + w->base + " --fixed-weights 0.5,0.5 --out " + never, 2, "--merge", never);
    require_failure("save-base", "--merge " + a + " --init-config " + w->file("base.json") + " --out " + never, 2,
                    "--init-config", never);

    const std::string merged = w->file("merged");
    require_ok("save-base", "--merge " + gate + " --fixed-weights 0.7,0.3 --out " + merged);
    require_plain_base(w->base, merged);
    const std::string unmerged = evaluate_rank(gate, eval_data(*w), w->file("eval-unmerged"), "--fixed-weights 0.7,0.3");
    const std::string folded   = evaluate_rank(merged, eval_data(*w), w->file("eval-merged"));
    require_same_evaluation(unmerged, folded);
    const std::string only_a = evaluate_rank(a, eval_data(*w), w->file("eval-a"));
    REQUIRE(std::abs(loss_of(only_a) - loss_of(folded)) > 100 * kLossTolerance);  // the mixture is not expert a

    // The same experts given with --expert on the base fold to the same weights.
    const std::string from_experts = w->file("merged-experts");
    require_ok("save-base", "--merge " + w->base + " --expert a=" + a + " --expert b=" + b +
                                " --fixed-weights 0.7,0.3 --out " + from_experts);
    const SafetensorsReader x(merged + "/model.safetensors"), y(from_experts + "/model.safetensors");
    REQUIRE(x.names() == y.names());
    for (const auto & name : x.names()) {
        INFO(name);
        REQUIRE((x.tensor(name) - y.tensor(name)).abs().max().item<double>() <= kWeightTolerance);
    }
}

namespace {

void write_png(const std::string & path, const at::Tensor & image) {  // image: [h, w, 3] uint8
    const auto h = static_cast<int>(image.size(0)), w = static_cast<int>(image.size(1));
    REQUIRE(stbi_write_png(path.c_str(), w, h, 3, image.contiguous().data_ptr<uint8_t>(), w * 3) != 0);
}

}  // namespace

TEST_CASE("save-base --merge folds a BEiT LoRA with its saved head into the base, and evaluate scores it as the "
          "adapter",
          "[cli][merge-export]") {
    TempDir           tmp;
    const std::string photos = tmp.file("photos");
    at::manual_seed(5);
    for (const std::string name : { "cat", "dog" }) {
        fs::create_directories(photos + "/" + name);
        for (int i = 0; i < 10; ++i) {  // classes told apart by brightness
            const at::Tensor noise = at::randint(0, 96, { 12, 12, 3 }, at::kLong);
            write_png(photos + "/" + name + "/img" + std::to_string(i) + ".png",
                      (noise + (name == "dog" ? 128 : 16)).to(at::kByte));
        }
    }
    const std::string data = tmp.file("data");
    require_ok("prepare-data", "--format image-folder --input " + photos + " --classes cat,dog --image-size 32 --seed 1"
                               " --out " + data);

    // configs/beit-tiny.json, smaller still, with a head for these two classes.
    const nlohmann::json config = {
        { "model_type", "beit" },          { "architectures", { "BeitForImageClassification" } },
        { "hidden_size", 32 },             { "num_hidden_layers", 2 },
        { "num_attention_heads", 2 },      { "intermediate_size", 64 },
        { "hidden_act", "gelu" },          { "hidden_dropout_prob", 0.0 },
        { "attention_probs_dropout_prob", 0.0 }, { "drop_path_rate", 0.1 },
        { "layer_norm_eps", 1e-12 },       { "layer_scale_init_value", 0.1 },
        { "initializer_range", 0.02 },     { "image_size", 32 },
        { "patch_size", 8 },               { "num_channels", 3 },
        { "use_absolute_position_embeddings", false }, { "use_relative_position_bias", true },
        { "use_shared_relative_position_bias", false }, { "use_mean_pooling", true },
        { "id2label", { { "0", "cat" }, { "1", "dog" } } }
    };
    write_bytes(tmp.file("beit.json"), config.dump());
    const std::string base = tmp.file("base");
    require_ok("save-base", "--init-config " + tmp.file("beit.json") + " --out " + base + " --seed 1");
    const std::string lora = tmp.file("lora");  // query,value + the classifier saved whole (the defaults)
    require_ok("lora-finetune", "--base " + base + " --train " + data + "/train.safetensors --val " + data +
                                    "/val.safetensors --out " + lora + " --steps 3 --batch-size 4 --lr 0.05 --seed 2");
    REQUIRE(read_json(lora + "/adapter_config.json")["modules_to_save"] == nlohmann::json{ "classifier" });

    const std::string merged = tmp.file("merged");
    require_ok("save-base", "--merge " + lora + " --out " + merged);
    require_plain_base(base, merged);
    REQUIRE(require_merged_weights(base, lora, merged) > 1e-3);

    const std::string test = data + "/train.safetensors";  // the largest split: only the comparison matters
    require_ok("evaluate", "--model " + lora + " --data " + test + " --out " + tmp.file("eval-lora"));
    require_ok("evaluate", "--model " + merged + " --data " + test + " --out " + tmp.file("eval-merged"));
    require_ok("evaluate", "--model " + base + " --data " + test + " --out " + tmp.file("eval-base"));
    require_same_evaluation(tmp.file("eval-lora"), tmp.file("eval-merged"));
    REQUIRE(read_bytes(tmp.file("eval-lora") + "/predictions.csv") == read_bytes(tmp.file("eval-merged") + "/predictions.csv"));
    REQUIRE(std::abs(loss_of(tmp.file("eval-lora")) - loss_of(tmp.file("eval-base"))) > 100 * kLossTolerance);

    // Mixture flags have no meaning for a LoRA folder.
    require_failure("save-base", "--merge " + lora + " --experts-only a --out " + tmp.file("never"), 1,
                    "--experts-only: is for a gate folder or a base with --expert experts", tmp.file("never"));
}
