// The training loop: a run killed at any moment and resumed ends with the same weights and
// metrics as an uninterrupted run (LoRA and CGM gates); LoRA training touches only the adapter
// (also over a bf16 base); gradient accumulation equals the larger batch; clipping is applied;
// early stopping keeps the best model; a damaged run folder is refused and left as it was.
#include "adapters/lora.h"
#include "adapters/lora_mixture.h"
#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/t5.h"
#include "support/fixtures.h"
#include "support/random_experts.h"
#include "support/temp_dir.h"
#include "text/t5_tokenizer.h"
#include "train/adamw.h"
#include "train/t5_mcq_task.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

using namespace cgm;
using namespace cgm::test;
namespace fs = std::filesystem;

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

// The tokenizer of the fixture set (found by kind), or nothing (the test is skipped).
std::optional<T5Tokenizer> fixture_tokenizer(const std::string & what) {
    const std::optional<Fixture> f = fixture_or_skip("t5_tokenizer", what);
    if (!f) {
        return std::nullopt;
    }
    return T5Tokenizer(tokenizer_dir(*f));
}

// A tiny random T5 whose vocabulary is the tokenizer's.
T5Model tiny_model(int64_t vocab_size, int num_layers, double dropout, uint64_t seed,
                   c10::ScalarType dtype = c10::kFloat) {
    const nlohmann::json config = { { "vocab_size", vocab_size }, { "d_model", 32 }, { "d_kv", 8 }, { "d_ff", 64 },
                                    { "num_layers", num_layers }, { "num_heads", 2 }, { "feed_forward_proj", "gated-gelu" },
                                    { "tie_word_embeddings", false }, { "dropout_rate", dropout } };
    return T5Model::random(T5Config::from_json(config, "test"), seed, dtype);
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
Run run_training(const T5Tokenizer & tokenizer, const std::string & out, const TrainOptions & options, int crash_at) {
    T5Model    model = tiny_model(tokenizer.size(), 1, 0.1, 5);
    LoraConfig lora;
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

// cgm-train's setup: a tiny T5, two frozen experts, per-example CGM gates as the only trainable
// tensors, round-robin domain batches; trained into `out`. Returns the final gate weights.
NamedTensors run_gate_training(const T5Tokenizer & tokenizer, const std::string & out, TrainOptions options,
                               int crash_at) {
    options.batching = Batching::round_robin;
    TempDir     experts_dir;
    T5Model     model = tiny_model(tokenizer.size(), 1, 0.1, 3);  // T5 dropout on: replayed on resume
    LoraMixture mixture(model.linear_modules(), random_experts(model, experts_dir), at::kFloat);
    mixture.attach_cgm(MixMode::example, 4, {}, 7);
    const NamedTensors gates = mixture.gate_parameters();
    T5McqTaskSpec      spec{ TextSetup{}, Scoring::rank, 8, gates,
                        [&](const std::string & dir) { write_safetensors(dir + "/gate.safetensors", gates); } };
    CrashingTask       task(crash_at, model, tokenizer, toy_records(12, 0), toy_records(4, 5), spec);
    train(task, options, out);
    NamedTensors copy;
    for (const auto & [name, t] : gates) {
        copy.emplace_back(name, t.detach().clone());
    }
    return copy;
}

// values(t): a float64 tensor's elements.
std::vector<double> values(const at::Tensor & t) {
    const at::Tensor c = t.detach().to(at::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// torch.optim.AdamW (betas 0.9/0.999, eps 1e-8, as the trainer uses) on plain doubles.
struct HandAdamW {
    std::vector<double> p, m, v;
    double              wd = 0;
    int                 t  = 0;

    void step(const std::vector<double> & g, double lr) {
        ++t;
        const double bc1 = 1.0 - std::pow(0.9, t), bc2 = 1.0 - std::pow(0.999, t);
        for (size_t i = 0; i < p.size(); ++i) {
            p[i] *= 1.0 - lr * wd;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + 1e-8);
        }
    }
};

// Least squares on N fixed examples: w [D] float64, loss(batch) = mean_i (x_i . w - y_i)^2, a
// mean over examples (so equal micro-batches average exactly). evaluate() returns a scripted
// accuracy (and, when given, a scripted loss); save() writes w. Every loss() batch, evaluation and save is recorded.
class QuadraticTask : public TrainTask {
  public:
    QuadraticTask(int64_t n, int64_t d, std::vector<double> accuracies = { 0.5 }, int crash_at = -1)
        : x_(at::empty({ n, d }, at::kDouble)), y_(at::empty({ n }, at::kDouble)), accuracies_(std::move(accuracies)),
          crash_at_(crash_at) {
        auto x = x_.accessor<double, 2>();
        auto y = y_.accessor<double, 1>();
        for (int64_t i = 0; i < n; ++i) {
            for (int64_t j = 0; j < d; ++j) {
                x[i][j] = std::sin(static_cast<double>(3 * i + j + 1));
            }
            y[i] = std::cos(static_cast<double>(i));
        }
        w = at::full({ d }, 0.1, at::kDouble).requires_grad_(true);
    }

    int64_t      num_examples() const override { return x_.size(0); }
    NamedTensors trainable() override { return { { "w", w } }; }
    at::Tensor   loss(const std::vector<int64_t> & batch) override {
        if (static_cast<int>(batches.size()) + 1 == crash_at_) {
            throw std::runtime_error("killed");
        }
        batches.push_back(batch);
        draws.push_back(at::rand({ 4 }, at::kDouble));  // what dropout would draw in this step
        const at::Tensor idx = at::tensor(batch, at::kLong);
        const at::Tensor r   = at::matmul(x_.index_select(0, idx), w) - y_.index_select(0, idx);  // [b]
        return (r * r).mean();
    }
    EvalMetrics evaluate() override {
        const double accuracy = accuracies_[std::min(evaluated.size(), accuracies_.size() - 1)];
        const double loss     = val_losses.empty() ? 0.0 : val_losses[std::min(evaluated.size(), val_losses.size() - 1)];
        const auto extra = evaluated.size() < extras.size() ? extras[evaluated.size()] : std::map<std::string, double>{};
        evaluated.push_back(w.detach().clone());
        return { loss, accuracy, extra };
    }
    void save(const std::string & dir) override {
        saved_after_eval.push_back(static_cast<int64_t>(evaluated.size()));
        write_safetensors(dir + "/model.safetensors", { { "w", w } });
    }

    // The residual x_i . p - y_i, by hand.
    double residual(const std::vector<double> & p, int64_t i) const {
        const auto x = x_.accessor<double, 2>();
        double     r = -y_.accessor<double, 1>()[i];
        for (size_t j = 0; j < p.size(); ++j) {
            r += x[i][static_cast<int64_t>(j)] * p[j];
        }
        return r;
    }
    // The gradient of loss(batch) at weights p, by hand: 2/b sum_i (x_i . p - y_i) x_i.
    std::vector<double> hand_gradient(const std::vector<double> & p, const std::vector<int64_t> & batch) const {
        const auto          x = x_.accessor<double, 2>();
        std::vector<double> g(p.size(), 0.0);
        for (const int64_t i : batch) {
            const double r = residual(p, i);
            for (size_t j = 0; j < p.size(); ++j) {
                g[j] += 2.0 / static_cast<double>(batch.size()) * r * x[i][static_cast<int64_t>(j)];
            }
        }
        return g;
    }
    double hand_loss(const std::vector<double> & p, const std::vector<int64_t> & batch) const {
        double sum = 0;
        for (const int64_t i : batch) {
            sum += residual(p, i) * residual(p, i);
        }
        return sum / static_cast<double>(batch.size());
    }

    at::Tensor                        w;
    std::vector<double>               val_losses;        // the loss evaluate() reports at each evaluation
    std::vector<std::map<std::string, double>> extras;   // the extra figures of each evaluation (none after)
    std::vector<std::vector<int64_t>> batches;
    std::vector<at::Tensor>           draws;             // a draw of the global generator per loss() call
    std::vector<at::Tensor>           evaluated;         // w at each evaluation
    std::vector<int64_t>              saved_after_eval;  // how many evaluations had run at each save

  private:
    at::Tensor          x_, y_;  // [N, D], [N]
    std::vector<double> accuracies_;
    int                 crash_at_;
};

// loss = scale_k * (w . x) at the k-th loss() call: a gradient of known size at every step.
class LinearTask : public TrainTask {
  public:
    LinearTask(std::vector<double> x, std::vector<double> scales)
        : x_(at::tensor(x, at::kDouble)), scales_(std::move(scales)) {
        w = at::zeros({ x_.size(0) }, at::kDouble).requires_grad_(true);
    }
    int64_t      num_examples() const override { return 1; }
    NamedTensors trainable() override { return { { "w", w } }; }
    at::Tensor   loss(const std::vector<int64_t> &) override { return (w * x_).sum() * scales_.at(calls_++); }
    EvalMetrics  evaluate() override { return { 0.0, 0.5 }; }
    void         save(const std::string &) override {}

    at::Tensor w;

  private:
    at::Tensor          x_;
    std::vector<double> scales_;
    size_t              calls_ = 0;
};

TrainOptions quiet_options() {
    TrainOptions o;
    o.log_every = 0;
    return o;
}

// Every file under dir (relative path -> bytes).
std::map<std::string, std::string> folder_files(const std::string & dir) {
    std::map<std::string, std::string> out;
    for (const auto & e : fs::recursive_directory_iterator(dir)) {
        if (e.is_regular_file()) {
            out[fs::relative(e.path(), dir).string()] = read_bytes(e.path().string());
        }
    }
    return out;
}

}  // namespace

TEST_CASE("a run killed at any moment and resumed ends exactly like an uninterrupted one", "[unit][train]") {
    const auto tokenizer = fixture_tokenizer("LoRA resume test");
    if (!tokenizer) {
        return;
    }
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
    const Run reference = run_training(*tokenizer, dir.file("full"), options, -1);
    REQUIRE(!reference.metrics_csv.empty());

    for (const int crash_at : { 1, 4, 7, 11 }) {  // loss() calls: 2 per step
        INFO("killed at loss call " << crash_at);
        const std::string out = dir.file("killed-" + std::to_string(crash_at));
        REQUIRE_THROWS_WITH(run_training(*tokenizer, out, options, crash_at), "killed");
        TrainOptions resume = options;
        resume.resume       = true;
        const Run resumed   = run_training(*tokenizer, out, resume, -1);
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

TEST_CASE("cgm-train --resume: gate training killed in the middle and resumed ends with bit-identical gate weights",
          "[unit][train]") {
    const auto tokenizer = fixture_tokenizer("CGM gate resume test");
    if (!tokenizer) {
        return;
    }
    TrainOptions options = quiet_options();
    options.steps        = 4;
    options.batch_size   = 4;  // 6 records per domain: batches 4,2 per domain, round robin
    options.eval_every   = 2;
    options.lr           = 1e-2;
    options.schedule     = "cosine";
    options.warmup       = 1;
    options.seed         = 2;

    TempDir            dir;
    const NamedTensors reference = run_gate_training(*tokenizer, dir.file("full"), options, -1);
    REQUIRE(!reference.empty());
    // The gates did train (so equality below means something).
    {
        TempDir            untrained_dir;
        T5Model            model = tiny_model(tokenizer->size(), 1, 0.1, 3);
        LoraMixture        mixture(model.linear_modules(), random_experts(model, untrained_dir), at::kFloat);
        mixture.attach_cgm(MixMode::example, 4, {}, 7);
        const NamedTensors initial = mixture.gate_parameters();
        REQUIRE(initial.size() == reference.size());
        bool changed = false;
        for (size_t i = 0; i < initial.size(); ++i) {
            changed = changed || !at::equal(initial[i].second, reference[i].second);
        }
        REQUIRE(changed);
    }

    for (const int crash_at : { 2, 3 }) {  // in step 2 (before any checkpoint), in step 3 (after step 2's)
        INFO("killed at loss call " << crash_at);
        const std::string out = dir.file("killed-" + std::to_string(crash_at));
        REQUIRE_THROWS_WITH(run_gate_training(*tokenizer, out, options, crash_at), "killed");
        REQUIRE(read_json_file(out + "/trainer_state.json")["step"].get<int64_t>() == (crash_at == 3 ? 2 : 0));
        TrainOptions resume    = options;
        resume.resume          = true;
        const NamedTensors got = run_gate_training(*tokenizer, out, resume, -1);
        REQUIRE(got.size() == reference.size());
        for (size_t i = 0; i < got.size(); ++i) {
            INFO(got[i].first);
            REQUIRE(got[i].first == reference[i].first);
            REQUIRE(at::equal(got[i].second, reference[i].second));
        }
        REQUIRE(read_json_file(out + "/trainer_state.json")["finished"].get<bool>());
    }
}

TEST_CASE("an AdamW step on a LoRA changes A and B; the base parameters stay bit-identical", "[unit][train]") {
    const auto f = fixture_or_skip("t5_lora", "LoRA-only training test");
    if (!f) {
        return;
    }
    T5Model      model = T5Model::load(f->path(f->manifest["base_model_dir"]));
    NamedTensors before;
    for (const auto & [name, t] : model.named_parameters()) {
        before.emplace_back(name, t.clone());
    }
    LoraAdapter adapter = create_lora(model.linear_modules(), LoraConfig{}, 1);
    attach_lora(model.linear_modules(), adapter);
    std::vector<at::Tensor> initial;
    for (const auto & p : adapter.parameters()) {
        initial.push_back(p.detach().clone());
    }
    AdamW optimizer(adapter.parameters(), AdamWOptions{});
    // B starts at 0, so A's gradient is 0 in the first step: two steps move both.
    for (int step = 0; step < 2; ++step) {
        const T5Output out = model.forward(f->get("input_ids"), f->get("attention_mask"), {}, f->get("labels"));
        out.loss.backward();
        for (const auto & [name, t] : model.named_parameters()) {
            INFO(name);
            REQUIRE(!t.grad().defined());
        }
        for (const auto & p : adapter.parameters()) {
            REQUIRE(p.grad().defined());
        }
        optimizer.step(1e-2);
        optimizer.zero_grad();
    }
    const auto params = adapter.parameters();
    REQUIRE(params.size() == initial.size());
    for (size_t i = 0; i < params.size(); ++i) {
        INFO("adapter tensor " << i);
        REQUIRE(!at::equal(params[i], initial[i]));
    }
    const auto after = model.named_parameters();
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) {
        INFO(after[i].first);
        REQUIRE(at::equal(after[i].second, before[i].second));
    }
}

TEST_CASE("f32 LoRA over a bf16 base: f32 A/B and gradients, finite loss, a step moves A/B, the base stays bf16",
          "[unit][train]") {
    T5Model      model = tiny_model(64, 1, 0.0, 11, at::kBFloat16);
    NamedTensors before;
    for (const auto & [name, t] : model.named_parameters()) {
        REQUIRE(t.scalar_type() == at::kBFloat16);
        before.emplace_back(name, t.clone());
    }
    LoraAdapter adapter = create_lora(model.linear_modules(), LoraConfig{}, 2);
    {
        // Non-zero B so that A gets a gradient in the first step too.
        c10::NoGradGuard no_grad;
        at::Generator    gen = at::make_generator<at::CPUGeneratorImpl>(5);
        for (auto & [path, layer] : adapter.layers) {
            layer->B.copy_(at::randn(layer->B.sizes(), gen) * 0.1);
        }
    }
    attach_lora(model.linear_modules(), adapter);
    std::vector<at::Tensor> initial;
    for (const auto & p : adapter.parameters()) {
        REQUIRE(p.scalar_type() == at::kFloat);
        initial.push_back(p.detach().clone());
    }
    at::Generator    gen    = at::make_generator<at::CPUGeneratorImpl>(1);
    const at::Tensor ids    = at::randint(3, 64, { 2, 6 }, gen, at::kLong);  // [B, S]
    const at::Tensor mask   = at::ones({ 2, 6 }, at::kLong);
    const at::Tensor labels = at::randint(3, 64, { 2, 3 }, gen, at::kLong);  // [B, T]
    model.set_training(true);
    const T5Output out = model.forward(ids, mask, {}, labels);
    REQUIRE(std::isfinite(out.loss.item<double>()));
    out.loss.backward();
    for (const auto & p : adapter.parameters()) {
        REQUIRE(p.grad().defined());
        REQUIRE(p.grad().scalar_type() == at::kFloat);
        REQUIRE(at::isfinite(p.grad()).all().item<bool>());
    }
    for (const auto & [name, t] : model.named_parameters()) {
        INFO(name);
        REQUIRE(!t.grad().defined());
    }
    AdamW optimizer(adapter.parameters(), AdamWOptions{});
    optimizer.step(1e-2);
    const auto params = adapter.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
        INFO("adapter tensor " << i);
        REQUIRE(params[i].scalar_type() == at::kFloat);
        REQUIRE(!at::equal(params[i], initial[i]));
    }
    const auto after = model.named_parameters();
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) {
        INFO(after[i].first);
        REQUIRE(after[i].second.scalar_type() == at::kBFloat16);
        REQUIRE(at::equal(after[i].second, before[i].second));
    }
}

TEST_CASE("--patience: stops after exactly `patience` evaluations without a better accuracy and keeps the best model",
          "[unit][train]") {
    // Accuracies per evaluation: 0.2 best, 0.1 worse, 0.5 best (the count starts again), then 0.4,
    // 0.5 (a tie is no improvement), 0.3: three without improvement -> stop after the 6th.
    const std::vector<double> script = { 0.2, 0.1, 0.5, 0.4, 0.5, 0.3, 0.9 };
    TempDir                   dir;
    QuadraticTask             task(8, 2, script);
    TrainOptions              o = quiet_options();
    o.steps                     = 20;
    o.batch_size                = 4;
    o.eval_every                = 1;
    o.patience                  = 3;
    o.max_grad_norm             = 0;
    o.lr                        = 0.05;
    const TrainResult r         = train(task, o, dir.path());
    REQUIRE(r.stopped_early);
    REQUIRE(r.steps == 6);
    REQUIRE(task.evaluated.size() == 6);
    REQUIRE(task.batches.size() == 6);  // no step after the last evaluation
    REQUIRE(r.best_step == 3);
    REQUIRE(r.best == 0.5);
    REQUIRE(describe(r) == "best val accuracy 0.5000 at step 3 of 6 (stopped early)");
    // save() ran after the 1st and 3rd evaluations only, and the saved weights are those of step 3.
    REQUIRE(task.saved_after_eval == std::vector<int64_t>{ 1, 3 });
    const SafetensorsReader saved(dir.file("model.safetensors"));
    REQUIRE(at::equal(saved.tensor("w"), task.evaluated[2]));
    REQUIRE(!at::equal(saved.tensor("w"), task.evaluated[5]));

    const nlohmann::json state = read_json_file(dir.file("trainer_state.json"));
    REQUIRE(state["stopped_early"].get<bool>());
    REQUIRE(state["finished"].get<bool>());
    REQUIRE(state["step"].get<int64_t>() == 6);
    REQUIRE(state["best_step"].get<int64_t>() == 3);
    REQUIRE(state["best_metric"].get<double>() == 0.5);
    REQUIRE(state["evals_without_improvement"].get<int64_t>() == 3);
    REQUIRE(state["history"].size() == 6);

    // Resuming a run that stopped early does nothing more.
    TrainOptions resume = o;
    resume.resume       = true;
    const TrainResult again = train(task, resume, dir.path());
    REQUIRE(again.steps == 6);
    REQUIRE(again.stopped_early);
    REQUIRE(task.batches.size() == 6);
}

TEST_CASE("--best-metric loss keeps the model with the lowest val loss and stops after `patience` evaluations without a "
          "lower one; it cannot change on --resume",
          "[unit][train]") {
    // Losses: 0.9 best, 1.0, 0.4 best, 0.4 (a tie), 0.6, 0.5 -> stop after the 6th. The accuracies
    // would pick the 2nd evaluation instead.
    TempDir       dir;
    QuadraticTask task(8, 2, { 0.1, 0.9, 0.2, 0.2, 0.2, 0.2 });
    task.val_losses = { 0.9, 1.0, 0.4, 0.4, 0.6, 0.5, 0.1 };
    TrainOptions o  = quiet_options();
    o.steps         = 20;
    o.batch_size    = 4;
    o.eval_every    = 1;
    o.patience      = 3;
    o.best_metric   = BestMetric::loss;
    const TrainResult r = train(task, o, dir.path());
    REQUIRE(r.stopped_early);
    REQUIRE(r.steps == 6);
    REQUIRE(r.best_step == 3);
    REQUIRE(r.best == 0.4);
    REQUIRE(describe(r) == "best val loss 0.4000 at step 3 of 6 (stopped early)");
    REQUIRE(task.saved_after_eval == std::vector<int64_t>{ 1, 3 });
    const nlohmann::json state = read_json_file(dir.file("trainer_state.json"));
    REQUIRE(state["best_metric_name"] == "val_loss");
    REQUIRE(state["best_metric"].get<double>() == 0.4);

    TrainOptions by_accuracy = o;
    by_accuracy.resume       = true;
    by_accuracy.best_metric  = BestMetric::accuracy;
    by_accuracy.steps        = 30;
    REQUIRE_THROWS_WITH(train(task, by_accuracy, dir.path()), Catch::Matchers::Contains("trainer_state.json") &&
                                                                  Catch::Matchers::Contains("--best-metric"));
}

TEST_CASE("extra validation figures (a gate's analytics) become metrics.csv columns val_<name> and survive --resume",
          "[unit][train]") {
    TempDir       dir;
    QuadraticTask task(8, 2);
    task.extras     = { { { "gate_entropy", 0.5 }, { "routing_accuracy", 1 } }, { { "gate_entropy", 0.25 } } };
    TrainOptions o  = quiet_options();
    o.steps         = 2;
    o.batch_size    = 4;
    o.eval_every    = 1;
    train(task, o, dir.path());
    TrainOptions more = o;
    more.steps        = 3;
    more.resume       = true;
    train(task, more, dir.path());  // the third evaluation has no extra figures
    std::istringstream       csv(read_bytes(dir.file("metrics.csv")));
    std::vector<std::string> lines;
    for (std::string line; std::getline(csv, line);) {
        lines.push_back(line);
    }
    REQUIRE(lines.size() == 4);
    REQUIRE(lines[0] == "step,epoch,train_loss,val_loss,val_accuracy,lr,val_gate_entropy,val_routing_accuracy");
    REQUIRE_THAT(lines[1], Catch::Matchers::EndsWith(",0.5,1"));
    REQUIRE_THAT(lines[2], Catch::Matchers::EndsWith(",0.25,"));
    REQUIRE_THAT(lines[3], Catch::Matchers::EndsWith(",,"));
    const nlohmann::json state = read_json_file(dir.file("trainer_state.json"));
    REQUIRE(state["history"][0]["extra"]["routing_accuracy"] == 1.0);
    REQUIRE(!state["history"][2].contains("extra"));
}

TEST_CASE("--patience 0 never stops early; patience 1 on the same scores stops at the first evaluation without improvement",
          "[unit][train]") {
    const std::vector<double> script = { 0.5, 0.1, 0.1 };
    for (const int64_t patience : { 0, 1 }) {
        INFO("patience " << patience);
        TempDir       dir;
        QuadraticTask task(8, 2, script);
        TrainOptions  o = quiet_options();
        o.steps         = 3;
        o.batch_size    = 8;
        o.eval_every    = 1;
        o.patience      = patience;
        const TrainResult r = train(task, o, dir.path());
        REQUIRE(r.stopped_early == (patience > 0));
        REQUIRE(r.steps == (patience > 0 ? 2 : 3));
        REQUIRE(r.best_step == 1);
        REQUIRE(task.saved_after_eval == std::vector<int64_t>{ 1 });
        REQUIRE(read_json_file(dir.file("trainer_state.json"))["stopped_early"].get<bool>() == (patience > 0));
    }
}

TEST_CASE("evaluations run every --eval-every steps and after the last; 0 means once per epoch of ceil(batches/accum) steps",
          "[unit][train]") {
    const auto history_steps = [](const std::string & dir) {
        std::vector<int64_t> steps;
        const nlohmann::json state = read_json_file(dir + "/trainer_state.json");  // outlives the loop
        for (const auto & row : state["history"]) {
            steps.push_back(row["step"].get<int64_t>());
        }
        return steps;
    };
    TempDir dir;
    {
        QuadraticTask task(8, 2);
        TrainOptions  o = quiet_options();
        o.steps         = 5;
        o.batch_size    = 4;
        o.eval_every    = 2;
        train(task, o, dir.file("every2"));
        REQUIRE(history_steps(dir.file("every2")) == std::vector<int64_t>{ 2, 4, 5 });
        REQUIRE(task.evaluated.size() == 3);
    }
    {
        // 12 examples in batches of 4: 3 batches, 2 per step -> an epoch is 2 steps; 2 epochs.
        QuadraticTask task(12, 2);
        TrainOptions  o = quiet_options();
        o.epochs        = 2;
        o.batch_size    = 4;
        o.grad_accum    = 2;
        const TrainResult r = train(task, o, dir.file("per-epoch"));
        REQUIRE(r.steps == 4);
        REQUIRE(task.batches.size() == 8);
        REQUIRE(history_steps(dir.file("per-epoch")) == std::vector<int64_t>{ 2, 4 });
        // The micro-batches run as one stream over epochs: the first 3 and the next 3 are each
        // a full epoch.
        for (size_t epoch = 0; epoch < 2; ++epoch) {
            std::set<int64_t> seen;
            for (size_t b = 3 * epoch; b < 3 * epoch + 3; ++b) {
                seen.insert(task.batches[b].begin(), task.batches[b].end());
            }
            REQUIRE(seen.size() == 12);
        }
        const double epoch = read_json_file(dir.file("per-epoch/trainer_state.json"))["history"][0]["epoch"].get<double>();
        REQUIRE(epoch == Approx(4.0 / 3.0));  // 2 steps x 2 micro-batches of 3 per epoch
    }
}

TEST_CASE("round-robin batches: one domain per batch, domains in name order by turns, every example once per epoch",
          "[unit][train]") {
    const auto tokenizer = fixture_tokenizer("round-robin batching test");
    if (!tokenizer) {
        return;
    }
    // Domains a: 5 records, b: 2, c: 3 (listed out of order); batch 2 -> a 2,2,1; b 2; c 2,1.
    const std::vector<std::string> domains = { "c", "a", "b", "a", "c", "a", "a", "b", "c", "a" };
    std::vector<McqRecord>         records;
    for (size_t i = 0; i < domains.size(); ++i) {
        records.push_back({ "r" + std::to_string(i), domains[i], "Question " + std::to_string(i) + "?", { "yes", "no" }, 0 });
    }
    T5Model            model = tiny_model(tokenizer->size(), 1, 0.0, 1);
    const NamedTensors none;
    T5McqTaskSpec      spec{ TextSetup{}, Scoring::rank, 8, none, [](const std::string &) {} };
    const T5McqTask    task(model, *tokenizer, records, {}, spec);
    REQUIRE(task.num_examples() == 10);
    TrainOptions options;
    options.batch_size = 2;
    options.seed       = 5;
    options.batching   = Batching::round_robin;

    const auto batches = epoch_batches(task, 0, options);
    std::vector<std::string> batch_domains;
    std::vector<size_t>      sizes;
    std::set<int64_t>        seen;
    for (const auto & b : batches) {
        sizes.push_back(b.size());
        batch_domains.push_back(domains[static_cast<size_t>(b.front())]);
        for (const int64_t i : b) {
            REQUIRE(domains[static_cast<size_t>(i)] == batch_domains.back());
            seen.insert(i);
        }
    }
    REQUIRE(batch_domains == std::vector<std::string>{ "a", "b", "c", "a", "c", "a" });
    REQUIRE(sizes == std::vector<size_t>{ 2, 2, 2, 2, 1, 1 });
    REQUIRE(seen.size() == 10);
    // Another epoch, another order (the shuffle is seeded by seed and epoch); the same epoch again, the same.
    REQUIRE(epoch_batches(task, 0, options) == batches);
    REQUIRE(epoch_batches(task, 1, options) != batches);

    // Mixed batching: the plain shuffle cut in order (4, 4, 2), domains mixed.
    options.batching   = Batching::mixed;
    options.batch_size = 4;
    std::vector<size_t> mixed_sizes;
    bool                mixes_domains = false;
    for (const auto & b : epoch_batches(task, 0, options)) {
        mixed_sizes.push_back(b.size());
        for (const int64_t i : b) {
            mixes_domains = mixes_domains || domains[static_cast<size_t>(i)] != domains[static_cast<size_t>(b.front())];
        }
    }
    REQUIRE(mixed_sizes == std::vector<size_t>{ 4, 4, 2 });
    REQUIRE(mixes_domains);
}

TEST_CASE("a training record without a label is refused, naming the record", "[unit][train]") {
    const auto tokenizer = fixture_tokenizer("unlabelled training record test");
    if (!tokenizer) {
        return;
    }
    std::vector<McqRecord> records = toy_records(3, 0);
    records[1].label               = -1;
    T5Model            model = tiny_model(tokenizer->size(), 1, 0.0, 1);
    const NamedTensors none;
    T5McqTaskSpec      spec{ TextSetup{}, Scoring::rank, 8, none, [](const std::string &) {} };
    REQUIRE_THROWS_WITH(T5McqTask(model, *tokenizer, records, {}, spec),
                        Catch::Matchers::Contains("'" + records[1].id + "'") && Catch::Matchers::Contains("no label"));
}

TEST_CASE("gradient accumulation 2 x batch 4 gives the weights of batch 8 and each step consumes 8 examples",
          "[unit][train]") {
    TrainOptions o = quiet_options();
    o.steps         = 4;  // 16 examples: 2 steps per epoch, so the run crosses an epoch
    o.eval_every    = 1;  // a history row (with the step's train loss) per step
    o.max_grad_norm = 0;  // no clipping: the reference below is plain AdamW
    o.lr            = 0.05;
    o.weight_decay  = 0.01;
    o.seed          = 3;

    TempDir       dir;
    QuadraticTask accum(16, 3), big(16, 3);
    TrainOptions  oa = o, ob = o;
    oa.batch_size = 4;
    oa.grad_accum = 2;
    ob.batch_size = 8;
    ob.grad_accum = 1;
    train(accum, oa, dir.file("accum"));
    train(big, ob, dir.file("big"));

    // Examples per step: two micro-batches of 4 that together are the big run's batch of 8.
    REQUIRE(accum.batches.size() == 8);
    REQUIRE(big.batches.size() == 4);
    for (size_t s = 0; s < 4; ++s) {
        INFO("step " << s);
        REQUIRE(accum.batches[2 * s].size() == 4);
        REQUIRE(accum.batches[2 * s + 1].size() == 4);
        REQUIRE(big.batches[s].size() == 8);
        std::vector<int64_t> both = accum.batches[2 * s];
        both.insert(both.end(), accum.batches[2 * s + 1].begin(), accum.batches[2 * s + 1].end());
        REQUIRE(both == big.batches[s]);
    }
    // Each epoch (2 steps) sees every example once.
    for (size_t epoch = 0; epoch < 2; ++epoch) {
        std::set<int64_t> seen(big.batches[2 * epoch].begin(), big.batches[2 * epoch].end());
        seen.insert(big.batches[2 * epoch + 1].begin(), big.batches[2 * epoch + 1].end());
        REQUIRE(seen.size() == 16);
    }

    // The same weights, and both equal AdamW by hand on the mean gradient over each batch of 8.
    REQUIRE(at::allclose(accum.w, big.w, 0.0, 1e-6));
    HandAdamW hand{ std::vector<double>(3, 0.1), std::vector<double>(3, 0.0), std::vector<double>(3, 0.0), 0.01 };
    std::vector<double> losses;
    for (size_t s = 0; s < 4; ++s) {
        losses.push_back(big.hand_loss(hand.p, big.batches[s]));
        hand.step(big.hand_gradient(hand.p, big.batches[s]), 0.05);
    }
    const std::vector<double> got_accum = values(accum.w), got_big = values(big.w);
    for (size_t j = 0; j < 3; ++j) {
        REQUIRE(got_accum[j] == Approx(hand.p[j]).margin(1e-9));
        REQUIRE(got_big[j] == Approx(hand.p[j]).margin(1e-9));
    }
    // The logged train loss of a step is the mean over its 8 examples (micro-batch losses / 2, summed).
    for (const char * run : { "accum", "big" }) {
        const nlohmann::json history = read_json_file(dir.file(std::string(run) + "/trainer_state.json"))["history"];
        REQUIRE(history.size() == 4);
        for (size_t s = 0; s < 4; ++s) {
            INFO(run << " step " << s + 1);
            REQUIRE(history[s]["step"].get<int64_t>() == static_cast<int64_t>(s + 1));
            REQUIRE(history[s]["train_loss"].get<double>() == Approx(losses[s]).epsilon(1e-9));
        }
    }
}

TEST_CASE("each step's random draws (dropout) come from (seed, step): new every step, the same in a rerun",
          "[unit][train]") {
    const auto run = [](uint64_t seed) {
        TempDir       dir;
        QuadraticTask task(8, 2);
        TrainOptions  o = quiet_options();
        o.steps         = 3;
        o.batch_size    = 4;
        o.seed          = seed;
        train(task, o, dir.path());
        return task.draws;
    };
    const std::vector<at::Tensor> a = run(1), again = run(1), other = run(2);
    REQUIRE(a.size() == 3);
    for (size_t s = 0; s < 3; ++s) {
        INFO("step " << s);
        REQUIRE(at::equal(a[s], again[s]));
        REQUIRE(!at::equal(a[s], other[s]));
        for (size_t t = 0; t < s; ++t) {
            REQUIRE(!at::equal(a[s], a[t]));  // a step never repeats an earlier step's masks
        }
    }
}

TEST_CASE("train() clips the gradient to --max-grad-norm before the AdamW step; 0 disables clipping", "[unit][train]") {
    // Gradients x = [3, 4] (norm 5) then 10 x (norm 50). AdamW's first step is the same for any
    // gradient size, but the second depends on the ratio of the two: 10 unclipped, ~1 clipped.
    const std::vector<double> x = { 3.0, 4.0 }, scales = { 1.0, 10.0 };
    const auto hand_run = [&](double max_norm) {
        HandAdamW hand{ { 0.0, 0.0 }, { 0.0, 0.0 }, { 0.0, 0.0 } };
        for (const double s : scales) {
            const double norm = 5.0 * s;
            const double coef = max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
            hand.step({ x[0] * s * coef, x[1] * s * coef }, 0.1);
        }
        return hand.p;
    };
    const std::vector<double> clipped = hand_run(0.5), unclipped = hand_run(0.0);
    REQUIRE(std::abs(clipped[0] - unclipped[0]) > 1e-3);  // the check below can tell them apart

    for (const double max_norm : { 0.5, 0.0 }) {
        INFO("max_grad_norm " << max_norm);
        TempDir      dir;
        LinearTask   task(x, scales);
        TrainOptions o  = quiet_options();
        o.steps         = 2;
        o.batch_size    = 1;
        o.lr            = 0.1;
        o.max_grad_norm = max_norm;
        train(task, o, dir.path());
        const std::vector<double> expected = max_norm > 0 ? clipped : unclipped;
        const std::vector<double> got      = values(task.w);
        REQUIRE(got[0] == Approx(expected[0]).margin(1e-12));
        REQUIRE(got[1] == Approx(expected[1]).margin(1e-12));
    }
}

TEST_CASE("training refuses an output folder that holds something else", "[unit][train]") {
    TempDir dir;
    write_bytes(dir.file("notes.txt"), "mine");
    QuadraticTask task(4, 2);
    TrainOptions  options = quiet_options();
    options.steps         = 1;
    REQUIRE_THROWS_WITH(train(task, options, dir.path()), Catch::Matchers::Contains("refusing to replace it"));
    REQUIRE(read_bytes(dir.file("notes.txt")) == "mine");
    REQUIRE(task.batches.empty());
}

TEST_CASE("resume with a corrupt trainer_state.json or a missing/truncated checkpoint: an Error naming the file, "
          "files untouched",
          "[unit][train]") {
    TempDir      dir;
    const auto   out = dir.file("run");
    TrainOptions o   = quiet_options();
    o.steps          = 6;
    o.batch_size     = 4;
    o.eval_every     = 2;
    {
        QuadraticTask killed(8, 2, { 0.5 }, 4);  // killed in step 4, after the checkpoint of step 2
        REQUIRE_THROWS_WITH(train(killed, o, out), "killed");
    }
    const std::string state_path = out + "/trainer_state.json";
    const std::string good_state = read_bytes(state_path);
    const std::string ckpt_rel   = nlohmann::json::parse(good_state)["checkpoint"].get<std::string>();
    REQUIRE(ckpt_rel == "checkpoint/state-2.safetensors");
    const std::string ckpt_path  = out + "/" + ckpt_rel;
    const std::string good_ckpt  = read_bytes(ckpt_path);
    TrainOptions      resume     = o;
    resume.resume                = true;

    const auto require_refused = [&](const std::string & named) {
        const auto    files = folder_files(out);
        QuadraticTask task(8, 2);
        REQUIRE_THROWS_AS(train(task, resume, out), Error);
        REQUIRE_THROWS_WITH(train(task, resume, out), Catch::Matchers::Contains(named));
        REQUIRE(task.batches.empty());
        REQUIRE(folder_files(out) == files);
    };
    SECTION("trainer_state.json is not JSON") {
        write_bytes(state_path, good_state.substr(0, good_state.size() / 2));
        require_refused(state_path);
    }
    SECTION("trainer_state.json lacks a field") {
        nlohmann::json j = nlohmann::json::parse(good_state);
        j.erase("best_step");
        write_bytes(state_path, j.dump());
        require_refused(state_path);
    }
    SECTION("the checkpoint it names is missing") {
        fs::remove(ckpt_path);
        require_refused(ckpt_path);
    }
    SECTION("the checkpoint it names is truncated") {
        write_bytes(ckpt_path, good_ckpt.substr(0, good_ckpt.size() - 9));
        require_refused(ckpt_path);
    }
    SECTION("the checkpoint lacks the trainable tensor") {
        write_safetensors(ckpt_path, { { "adamw.step", at::scalar_tensor(2, at::kLong) } });
        require_refused(ckpt_path);
    }
    SECTION("an intact folder resumes (the cases above are refused for their damage only)") {
        QuadraticTask task(8, 2);
        const TrainResult r = train(task, resume, out);
        REQUIRE(r.steps == 6);
        REQUIRE(task.batches.size() == 4);  // steps 3..6
    }
}

namespace {

// The checkpoint files in dir/checkpoint, by name.
std::set<std::string> checkpoint_files(const TempDir & dir) {
    std::set<std::string> names;
    for (const auto & entry : std::filesystem::directory_iterator(dir.file("checkpoint"))) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

// A task that receives SIGINT while computing the loss of its `at`-th batch (1-based).
class InterruptedTask : public QuadraticTask {
  public:
    InterruptedTask(int64_t n, int64_t d, int at) : QuadraticTask(n, d), at_(at) {}
    at::Tensor loss(const std::vector<int64_t> & batch) override {
        if (static_cast<int>(batches.size()) + 1 == at_) {
            std::raise(SIGINT);
        }
        return QuadraticTask::loss(batch);
    }

  private:
    int at_;
};

// A task that receives SIGINT during its first evaluation.
class InterruptedInEvaluation : public QuadraticTask {
  public:
    using QuadraticTask::QuadraticTask;
    EvalMetrics evaluate() override {
        if (evaluated.empty()) {
            std::raise(SIGINT);
        }
        return QuadraticTask::evaluate();
    }
};

}  // namespace

TEST_CASE("--save-every checkpoints between evaluations and --save-total-limit keeps the newest; a kill resumes from "
          "the last checkpoint and ends like an uninterrupted run",
          "[unit][train]") {
    TrainOptions o     = quiet_options();
    o.steps            = 8;
    o.batch_size       = 4;
    o.eval_every       = 8;
    o.save_every       = 2;
    o.save_total_limit = 2;
    TempDir       whole;
    QuadraticTask uninterrupted(8, 2);
    train(uninterrupted, o, whole.path());

    TempDir       dir;
    QuadraticTask killed(8, 2, { 0.5 }, /*crash_at=*/6);
    REQUIRE_THROWS_WITH(train(killed, o, dir.path()), "killed");
    REQUIRE(read_json_file(dir.file("trainer_state.json"))["step"] == 4);  // not 0: no evaluation ran yet
    REQUIRE(checkpoint_files(dir) == std::set<std::string>{ "state-2.safetensors", "state-4.safetensors" });

    TrainOptions resume = o;
    resume.resume       = true;
    QuadraticTask rest(8, 2);
    train(rest, resume, dir.path());
    REQUIRE(rest.batches.size() == 4);  // steps 5..8
    REQUIRE(checkpoint_files(dir) == std::set<std::string>{ "state-6.safetensors", "state-8.safetensors" });
    REQUIRE(at::equal(rest.w, uninterrupted.w));
}

TEST_CASE("SIGINT during training ends the step, writes a checkpoint and says how to resume", "[unit][train]") {
    TrainOptions o = quiet_options();
    o.steps        = 8;
    o.batch_size   = 4;
    o.eval_every   = 8;
    TempDir         dir;
    InterruptedTask task(8, 2, 3);
    REQUIRE_THROWS_WITH(train(task, o, dir.path()),
                        Catch::Matchers::Contains("interrupted (SIGINT) at step 3 of 8") &&
                            Catch::Matchers::Contains("--resume to continue"));
    REQUIRE(read_json_file(dir.file("trainer_state.json"))["step"] == 3);
    REQUIRE(checkpoint_files(dir) == std::set<std::string>{ "state-3.safetensors" });
}

TEST_CASE("SIGINT during an evaluation stops right after it, with a checkpoint, before another step", "[unit][train]") {
    TrainOptions o = quiet_options();
    o.steps        = 8;
    o.batch_size   = 4;
    o.eval_every   = 2;
    TempDir                 dir;
    InterruptedInEvaluation task(8, 2);
    REQUIRE_THROWS_WITH(train(task, o, dir.path()), Catch::Matchers::Contains("interrupted (SIGINT) at step 2 of 8"));
    REQUIRE(task.batches.size() == 2);
    REQUIRE(read_json_file(dir.file("trainer_state.json"))["step"] == 2);
    REQUIRE(checkpoint_files(dir) == std::set<std::string>{ "state-2.safetensors" });
}
