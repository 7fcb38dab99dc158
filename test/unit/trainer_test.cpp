// The training loop: a run killed at any moment and resumed ends with the same weights and
// metrics as an uninterrupted run; LoRA training touches only the adapter.
#include "adapters/lora.h"
#include "core/error.h"
#include "io/json_file.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"
#include "text/t5_tokenizer.h"
#include "train/t5_mcq_task.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace cgm;
using namespace cgm::test;

namespace {

std::vector<McqRecord> toy_records(int n, int offset) {
    const std::vector<std::string> words = { "apple", "river", "stone", "cloud", "green", "quick", "table", "music" };
    std::vector<McqRecord>         out;
    for (int i = 0; i < n; ++i) {
        const int a = (i + offset) % 8, b = (i * 3 + 1 + offset) % 8;
        out.push_back({ "r" + std::to_string(i), i % 2 ? "odd" : "even", "Which comes first: " + words[a] + "?",
                        { words[a], words[b == a ? (b + 1) % 8 : b] }, 0 });
    }
    return out;
}

// Throws at its n-th loss() call: a run killed in the middle of a step.
class CrashingTask : public T5McqTask {
  public:
    CrashingTask(int crash_at, T5Model & m, const T5Tokenizer & t, const std::vector<McqRecord> & tr,
                 std::vector<McqRecord> va, T5McqTaskSpec s)
        : T5McqTask(m, t, tr, std::move(va), std::move(s)), crash_at_(crash_at) {}
    at::Tensor loss(const std::vector<int64_t> & batch) override {
        if (++calls_ == crash_at_) {
            throw std::runtime_error("killed");
        }
        return T5McqTask::loss(batch);
    }

  private:
    int crash_at_;
    int calls_ = 0;
};

struct Run {
    NamedTensors final_weights;
    std::string  metrics_csv;
};

// A fresh tiny model with LoRA (same seeds every time), trained into `out`.
Run run_training(const std::string & out, const TrainOptions & options, int crash_at) {
    const T5Tokenizer tokenizer(fixtures_dir() + "/t5_tokenizer/tokenizer");
    const nlohmann::json config = { { "vocab_size", 600 }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 64 },
                                    { "num_layers", 1 },   { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false }, { "dropout_rate", 0.1 } };
    T5Model     model = T5Model::random(T5Config::from_json(config, "test"), 5);
    LoraConfig  lora;
    lora.r       = 4;
    lora.dropout = 0.1;  // dropout on: resume must replay the same random masks
    LoraAdapter adapter = create_lora(model.linear_modules(), lora, 9);
    attach_lora(model.linear_modules(), adapter);
    T5McqTaskSpec spec{ TextSetup{}, Scoring::rank, 8, adapter.peft_tensors(),
                        [&](const std::string & dir) { save_lora(adapter, dir); } };
    CrashingTask  task(crash_at, model, tokenizer, toy_records(24, 0), toy_records(6, 3), spec);
    train(task, options, out);
    return { adapter.peft_tensors(), read_bytes(out + "/metrics.csv") };
}

}  // namespace

TEST_CASE("a run killed at any moment and resumed ends exactly like an uninterrupted one", "[unit][train]") {
    TrainOptions options;
    options.steps      = 6;
    options.batch_size = 5;  // 24 examples: batches of 5,5,5,5,4 -> epochs cross steps
    options.grad_accum = 2;
    options.eval_every = 2;
    options.schedule   = "linear";
    options.warmup     = 2;
    options.log_every  = 0;
    options.seed       = 4;

    TempDir   dir;
    const Run reference = run_training(dir.file("full"), options, -1);
    REQUIRE(!reference.metrics_csv.empty());

    for (const int crash_at : { 1, 4, 7, 11 }) {  // loss() calls: 2 per step
        INFO("killed at loss call " << crash_at);
        const std::string out = dir.file("killed-" + std::to_string(crash_at));
        REQUIRE_THROWS_WITH(run_training(out, options, crash_at), "killed");
        TrainOptions resume = options;
        resume.resume       = true;
        const Run resumed   = run_training(out, resume, -1);
        REQUIRE(resumed.final_weights.size() == reference.final_weights.size());
        for (size_t i = 0; i < resumed.final_weights.size(); ++i) {
            INFO(resumed.final_weights[i].first);
            REQUIRE(at::equal(resumed.final_weights[i].second, reference.final_weights[i].second));
        }
        REQUIRE(resumed.metrics_csv == reference.metrics_csv);
        const nlohmann::json state = read_json_file(out + "/trainer_state.json");
        REQUIRE(state["finished"].get<bool>());
        REQUIRE(state["step"].get<int64_t>() == 6);
    }
}

TEST_CASE("training a LoRA changes only the adapter; the base stays as loaded", "[unit][train]") {
    const auto      fixtures = fixtures_of_kind("t5_lora");
    const Fixture & f        = fixtures.front();
    T5Model        model = T5Model::load(f.path(f.manifest["base_model_dir"]));
    NamedTensors   before;
    for (const auto & [name, t] : model.named_parameters()) {
        before.emplace_back(name, t.clone());
    }
    LoraAdapter adapter = create_lora(model.linear_modules(), LoraConfig{}, 1);
    attach_lora(model.linear_modules(), adapter);
    const T5Output out = model.forward(f.get("input_ids"), f.get("attention_mask"), {}, f.get("labels"));
    out.loss.backward();
    for (const auto & [name, t] : model.named_parameters()) {
        INFO(name);
        REQUIRE(!t.grad().defined());
    }
    for (const auto & p : adapter.parameters()) {
        REQUIRE(p.grad().defined());
    }
    const auto after = model.named_parameters();
    for (size_t i = 0; i < after.size(); ++i) {
        REQUIRE(at::equal(after[i].second, before[i].second));
    }
}

TEST_CASE("training refuses an output folder that holds something else", "[unit][train]") {
    TempDir dir;
    write_bytes(dir.file("notes.txt"), "mine");
    TrainOptions options;
    options.steps = 1;
    REQUIRE_THROWS_WITH(run_training(dir.path(), options, -1), Catch::Matchers::Contains("refusing to write into it"));
    REQUIRE(read_bytes(dir.file("notes.txt")) == "mine");
}
