#include "train/trainer.h"

#include "core/error.h"
#include "core/random.h"
#include "eval/plots.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "train/adamw.h"
#include "train/schedule.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

struct HistoryRow {
    int64_t step;
    double  epoch, train_loss, val_loss, val_accuracy, lr;
};

// Everything needed to continue a run, saved in trainer_state.json.
struct RunState {
    int64_t                 step          = 0;
    double                  best_accuracy = -1;
    int64_t                 best_step     = 0;
    int64_t                 bad_evals     = 0;
    bool                    finished      = false;
    bool                    stopped_early = false;
    std::string             checkpoint;  // file under checkpoint/, relative to the output folder
    std::vector<HistoryRow> history;
};

nlohmann::json to_json(const RunState & s, double epoch) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto & r : s.history) {
        rows.push_back({ { "step", r.step }, { "epoch", r.epoch }, { "train_loss", r.train_loss },
                         { "val_loss", r.val_loss }, { "val_accuracy", r.val_accuracy }, { "lr", r.lr } });
    }
    return { { "step", s.step },        { "epoch", epoch },          { "best_metric", s.best_accuracy },
             { "best_metric_name", "val_accuracy" }, { "best_step", s.best_step }, { "evals_without_improvement", s.bad_evals },
             { "finished", s.finished }, { "stopped_early", s.stopped_early }, { "checkpoint", s.checkpoint },
             { "history", rows } };
}

RunState from_json(const nlohmann::json & j, const std::string & path) {
    RunState s;
    try {
        s.step          = j.at("step").get<int64_t>();
        s.best_accuracy = j.at("best_metric").get<double>();
        s.best_step     = j.at("best_step").get<int64_t>();
        s.bad_evals     = j.at("evals_without_improvement").get<int64_t>();
        s.finished      = j.at("finished").get<bool>();
        s.stopped_early = j.at("stopped_early").get<bool>();
        s.checkpoint    = j.at("checkpoint").get<std::string>();
        for (const auto & r : j.at("history")) {
            s.history.push_back({ r.at("step").get<int64_t>(), r.at("epoch").get<double>(), r.at("train_loss").get<double>(),
                                  r.at("val_loss").get<double>(), r.at("val_accuracy").get<double>(), r.at("lr").get<double>() });
        }
    } catch (const nlohmann::json::exception & e) {
        fail(path, std::string("not a trainer state: ") + json_error_text(e));
    }
    return s;
}

std::string metrics_csv(const std::vector<HistoryRow> & rows) {
    std::ostringstream o;
    o << "step,epoch,train_loss,val_loss,val_accuracy,lr\n";
    for (const auto & r : rows) {
        o << r.step << ',' << r.epoch << ',' << r.train_loss << ',' << r.val_loss << ',' << r.val_accuracy << ',' << r.lr
          << '\n';
    }
    return o.str();
}

// Refuses folders that hold something other than an earlier run; returns whether one is there.
bool prepare_out_dir(const std::string & dir, bool resume) {
    std::error_code ec;
    const bool      has_state = fs::exists(fs::path(dir) / "trainer_state.json", ec);
    if (resume && has_state) {
        return true;
    }
    if (resume) {
        spdlog::info("{}: no earlier run to resume; starting from the beginning", dir);
    }
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec) && !has_state) {
        fail(dir, "exists and does not hold an earlier run; refusing to write into it");
    }
    if (has_state && !resume) {
        spdlog::warn("{}: starting over; the earlier run's files are replaced (use --resume to continue it)", dir);
        fs::remove_all(fs::path(dir) / "checkpoint", ec);
    }
    fs::create_directories(fs::path(dir) / "checkpoint", ec);
    if (ec) {
        fail(dir, "cannot create directory: " + ec.message());
    }
    return false;
}

// A progress line rewritten in place when stderr is a terminal.
void show_progress(int64_t step, int64_t total, double loss) {
    if (!::isatty(STDERR_FILENO)) {
        return;
    }
    const int   width = 30;
    const auto  done  = static_cast<int>(width * step / std::max<int64_t>(total, 1));
    std::string bar   = std::string(static_cast<size_t>(done), '=') + std::string(static_cast<size_t>(width - done), ' ');
    std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f ", bar.c_str(), static_cast<long long>(step),
                 static_cast<long long>(total), loss);
    if (step == total) {
        std::fprintf(stderr, "\n");
    }
}

}  // namespace

Batching parse_batching(const std::string & name) {
    if (name == "mixed") {
        return Batching::mixed;
    }
    if (name == "round-robin") {
        return Batching::round_robin;
    }
    throw Error("--batching: unknown batching '" + name + "' (expected mixed or round-robin)");
}

std::vector<std::vector<int64_t>> epoch_batches(const TrainTask & task, int64_t epoch, const TrainOptions & o) {
    // Per domain (in name order; one domain when mixed): a seeded shuffle cut into batches; then one
    // batch of each domain in turn.
    const std::vector<std::string>              domains = task.example_domains();
    std::map<std::string, std::vector<int64_t>> by_domain;
    for (int64_t i = 0; i < task.num_examples(); ++i) {
        const bool one_domain = o.batching == Batching::mixed || domains.empty();
        by_domain[one_domain ? std::string() : domains.at(static_cast<size_t>(i))].push_back(i);
    }
    std::mt19937_64                                rng(o.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    const auto                                     size = static_cast<size_t>(o.batch_size);
    std::vector<std::vector<std::vector<int64_t>>> queues;
    for (auto & [domain, indices] : by_domain) {
        std::shuffle(indices.begin(), indices.end(), rng);
        queues.emplace_back();
        for (size_t i = 0; i < indices.size(); i += size) {
            queues.back().emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(i),
                                       indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), i + size)));
        }
    }
    std::vector<std::vector<int64_t>> batches;
    for (size_t round = 0, added = 1; added > 0; ++round) {
        added = 0;
        for (const auto & q : queues) {
            if (round < q.size()) {
                batches.push_back(q[round]);
                ++added;
            }
        }
    }
    return batches;
}

TrainResult train(TrainTask & task, const TrainOptions & o, const std::string & out_dir) {
    if (task.num_examples() == 0) {
        throw Error("no training examples");
    }
    if (o.batch_size <= 0 || o.grad_accum <= 0) {
        throw Error("--batch-size and --grad-accum must be positive");
    }
    const Schedule schedule   = parse_schedule(o.schedule);
    const bool     resuming   = prepare_out_dir(out_dir, o.resume);
    const fs::path out(out_dir);
    std::vector<std::vector<int64_t>> batches = epoch_batches(task, 0, o);
    int64_t                           cached_epoch = 0;
    const auto                        n_batches    = static_cast<int64_t>(batches.size());  // the same every epoch
    const int64_t  per_epoch  = (n_batches + o.grad_accum - 1) / o.grad_accum;
    const int64_t  total      = o.steps > 0 ? o.steps : o.epochs * per_epoch;
    const int64_t  eval_every = o.eval_every > 0 ? o.eval_every : per_epoch;
    const auto     epoch_at   = [&](int64_t step) { return static_cast<double>(step * o.grad_accum) / static_cast<double>(n_batches); };

    const NamedTensors      named = task.trainable();
    std::vector<at::Tensor> params;
    for (const auto & kv : named) {
        params.push_back(kv.second);
    }
    AdamW    optimizer(params, AdamWOptions{ 0.9, 0.999, 1e-8, o.weight_decay });
    RunState state;
    if (resuming) {
        const std::string state_path = (out / "trainer_state.json").string();
        state                        = from_json(read_json_file(state_path), state_path);
        if (state.finished) {
            spdlog::info("{}: the run already finished at step {}; nothing to do", out_dir, state.step);
            return { state.step, state.best_accuracy, state.best_step, state.stopped_early };
        }
        if (!state.checkpoint.empty()) {
            const SafetensorsReader ckpt((out / state.checkpoint).string());
            c10::NoGradGuard        no_grad;
            for (const auto & [name, t] : named) {
                t.copy_(ckpt.tensor("param." + name));
            }
            optimizer.load_state(ckpt);
        }
        spdlog::info("resuming {} at step {}/{}", out_dir, state.step, total);
    } else {
        // Written before any work, so a run killed at any moment can be resumed (from step 0 here).
        write_json_file((out / "trainer_state.json").string(), to_json(state, 0.0));
    }

    double  loss_sum = 0, loss_steps = 0;
    int64_t examples = 0;
    auto    started  = std::chrono::steady_clock::now();
    while (state.step < total) {
        seed_torch(o.seed * 7919ULL + static_cast<uint64_t>(state.step));  // dropout depends on the step only
        const double lr = o.lr * lr_factor(schedule, state.step, total, o.warmup);
        double       step_loss = 0;
        for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
            const int64_t k     = state.step * o.grad_accum + micro;  // micro-batches form one stream over epochs
            const int64_t epoch = k / n_batches;
            if (epoch != cached_epoch) {
                batches      = epoch_batches(task, epoch, o);
                cached_epoch = epoch;
            }
            const auto &     batch = batches[static_cast<size_t>(k % n_batches)];
            const at::Tensor loss  = task.loss(batch) / static_cast<double>(o.grad_accum);
            loss.backward();
            step_loss += loss.item<double>();
            examples += static_cast<int64_t>(batch.size());
        }
        if (!std::isfinite(step_loss)) {
            throw Error("training loss is " + std::to_string(step_loss) + " at step " + std::to_string(state.step) +
                        " (learning rate too high?)");
        }
        const double grad_norm = clip_grad_norm(params, o.max_grad_norm);
        optimizer.step(lr);
        optimizer.zero_grad();
        ++state.step;
        loss_sum += step_loss;
        ++loss_steps;
        show_progress(state.step, total, step_loss);
        if (o.log_every > 0 && state.step % o.log_every == 0) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            spdlog::info("step {}/{} epoch {:.2f} loss {:.4f} lr {:.3g} grad-norm {:.3f} {:.1f} examples/s", state.step, total,
                         epoch_at(state.step), step_loss, lr, grad_norm, static_cast<double>(examples) / std::max(secs, 1e-9));
        }
        if (state.step % eval_every != 0 && state.step != total) {
            continue;
        }

        const EvalMetrics m = task.evaluate();
        state.history.push_back({ state.step, epoch_at(state.step), loss_sum / std::max(loss_steps, 1.0), m.loss, m.accuracy, lr });
        loss_sum = loss_steps = 0;
        if (m.accuracy > state.best_accuracy) {
            state.best_accuracy = m.accuracy;
            state.best_step     = state.step;
            state.bad_evals     = 0;
            task.save(out_dir);
        } else {
            ++state.bad_evals;
        }
        spdlog::info("eval at step {}: val loss {:.4f} val accuracy {:.4f} (best {:.4f} at step {})", state.step, m.loss,
                     m.accuracy, state.best_accuracy, state.best_step);
        state.stopped_early = o.patience > 0 && state.bad_evals >= o.patience;
        state.finished      = state.stopped_early || state.step == total;

        // Checkpoint: weights + optimizer under a new name, then the state that points to it.
        NamedTensors ckpt = optimizer.state();
        for (const auto & [name, t] : named) {
            ckpt.emplace_back("param." + name, t);
        }
        const std::string previous = state.checkpoint;
        state.checkpoint           = "checkpoint/state-" + std::to_string(state.step) + ".safetensors";
        write_safetensors((out / state.checkpoint).string(), ckpt);
        write_json_file((out / "trainer_state.json").string(), to_json(state, epoch_at(state.step)));
        if (!previous.empty() && previous != state.checkpoint) {
            std::error_code ec;
            fs::remove(out / previous, ec);
        }
        write_text_atomic((out / "metrics.csv").string(), metrics_csv(state.history));
        plot_training_curves((out / "metrics.csv").string(), (out / "curves.png").string());
        if (state.stopped_early) {
            spdlog::info("early stop: no better val accuracy in {} evaluations", o.patience);
            break;
        }
    }
    return { state.step, state.best_accuracy, state.best_step, state.stopped_early };
}

}  // namespace cgm
