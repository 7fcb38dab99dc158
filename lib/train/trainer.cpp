#include "train/trainer.h"

#include "core/error.h"
#include "core/progress_line.h"
#include "core/random.h"
#include "core/stop_point.h"
#include "dist/share.h"
#include "dist/world.h"
#include "eval/plots.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/run_record.h"
#include "train/adamw.h"
#include "train/gradient_sync.h"
#include "train/schedule.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

struct HistoryRow {
    int64_t                       step;
    double                        epoch, train_loss, val_loss, val_accuracy, lr;
    std::map<std::string, double> extra = {};  // EvalMetrics::extra
};

// Everything needed to continue a run, saved in trainer_state.json.
struct RunState {
    int64_t                 step          = 0;
    int64_t                 total         = 0;  // the steps the run was asked for
    std::optional<double>   best;  // the best value of the best metric so far; none before the first evaluation
    int64_t                 best_step     = 0;
    int64_t                 bad_evals     = 0;
    bool                    finished      = false;
    bool                    stopped_early = false;
    std::string             checkpoint;  // file under checkpoint/, relative to the output folder
    std::vector<HistoryRow> history;
    // The training losses since the last evaluation, whose mean is its train_loss: kept so that a
    // run resumed between evaluations reports what an uninterrupted one does.
    double                  loss_sum   = 0;
    int64_t                 loss_steps = 0;
    int64_t                 world_size = 1;  // processes that trained it (a resume needs as many)
};

const char * metric_name(BestMetric m) {
    return m == BestMetric::loss ? "val_loss" : "val_accuracy";
}

nlohmann::json to_json(const RunState & s, double epoch, BestMetric metric) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto & r : s.history) {
        nlohmann::json row = { { "step", r.step },         { "epoch", r.epoch },   { "train_loss", r.train_loss },
                               { "val_loss", r.val_loss }, { "val_accuracy", r.val_accuracy }, { "lr", r.lr } };
        if (!r.extra.empty()) {
            row["extra"] = r.extra;
        }
        rows.push_back(row);
    }
    const nlohmann::json best = s.best ? nlohmann::json(*s.best) : nlohmann::json(nullptr);
    return { { "step", s.step },        { "total_steps", s.total },  { "epoch", epoch },          { "best_metric", best },
             { "best_metric_name", metric_name(metric) }, { "best_step", s.best_step }, { "evals_without_improvement", s.bad_evals },
             { "finished", s.finished }, { "stopped_early", s.stopped_early }, { "checkpoint", s.checkpoint },
             { "history", rows }, { "loss_since_eval", { { "sum", s.loss_sum }, { "steps", s.loss_steps } } },
             { "world_size", s.world_size } };
}

RunState from_json(const nlohmann::json & j, const std::string & path, BestMetric metric) {
    RunState s;
    try {
        s.step  = j.at("step").get<int64_t>();
        s.total = j.value("total_steps", s.step);  // states written before it was recorded
        const std::string name = j.value("best_metric_name", "val_accuracy");
        if (name != metric_name(metric)) {
            fail(path, "the run kept its best model by " + name + "; --best-metric cannot change on --resume");
        }
        // States written before null was used for "no evaluation yet" held -1 there.
        if (const auto & best = j.at("best_metric"); !best.is_null() && best.get<double>() >= 0) {
            s.best = best.get<double>();
        }
        s.best_step     = j.at("best_step").get<int64_t>();
        s.bad_evals     = j.at("evals_without_improvement").get<int64_t>();
        s.finished      = j.at("finished").get<bool>();
        s.stopped_early = j.at("stopped_early").get<bool>();
        s.checkpoint    = j.at("checkpoint").get<std::string>();
        s.world_size = j.value("world_size", int64_t{ 1 });  // absent: written by one process
        if (j.contains("loss_since_eval")) {  // absent in states written before it was kept
            s.loss_sum   = j["loss_since_eval"].at("sum").get<double>();
            s.loss_steps = j["loss_since_eval"].at("steps").get<int64_t>();
        }
        for (const auto & r : j.at("history")) {
            s.history.push_back({ r.at("step").get<int64_t>(), r.at("epoch").get<double>(), r.at("train_loss").get<double>(),
                                  r.at("val_loss").get<double>(), r.at("val_accuracy").get<double>(), r.at("lr").get<double>(),
                                  r.value("extra", std::map<std::string, double>{}) });
        }
    } catch (const nlohmann::json::exception & e) {
        fail(path, std::string("not a trainer state: ") + json_error_text(e));
    }
    return s;
}

TrainResult result_of(const RunState & s, BestMetric metric) {
    return { s.step, metric_name(metric), s.best.value_or(0.0), s.best_step, s.stopped_early };
}

// The fixed columns, then val_<name> for every extra figure any row has (empty where a row has not).
std::string metrics_csv(const std::vector<HistoryRow> & rows) {
    std::set<std::string> extra;
    for (const auto & r : rows) {
        for (const auto & [name, value] : r.extra) {
            extra.insert(name);
        }
    }
    std::ostringstream o;
    o << "step,epoch,train_loss,val_loss,val_accuracy,lr";
    for (const auto & name : extra) {
        o << ",val_" << name;
    }
    o << '\n';
    for (const auto & r : rows) {
        o << r.step << ',' << r.epoch << ',' << r.train_loss << ',' << r.val_loss << ',' << r.val_accuracy << ',' << r.lr;
        for (const auto & name : extra) {
            o << ',';
            if (const auto it = r.extra.find(name); it != r.extra.end()) {
                o << it->second;
            }
        }
        o << '\n';
    }
    return o.str();
}

// Flags that may change on --resume: how long to train and how to report.
const std::vector<std::string> & resumable_settings() {
    static const std::vector<std::string> names = { "out",        "steps",      "epochs",          "patience",
                                                    "log-every",  "save-every", "save-total-limit", "eval-batch-size",
                                                    "dist-timeout" };
    return names;
}

// A resumed run keeps its settings and data: an Error naming the first flag or file that changed.
void check_resume(const std::string & dir, const RunRecord & now) {
    const std::optional<RunRecord> then = read_run_record(dir);
    if (!then) {
        return;  // written before run.json existed: nothing to compare
    }
    const std::vector<std::string> diff = differing_settings(then->settings, now.settings, resumable_settings());
    if (!diff.empty()) {
        std::string may_change;
        for (const auto & name : resumable_settings()) {
            may_change += name == "out" ? "" : (may_change.empty() ? "--" : ", --") + name;
        }
        fail(dir, "--resume continues the run with its own settings, but " + diff.front() +
                      (diff.size() > 1 ? " (and " + std::to_string(diff.size() - 1) + " more)" : "") + "; only " +
                      may_change + " may change (start a new run with another --out)");
    }
    for (const auto & d : then->data) {
        for (const auto & n : now.data) {
            if (n.path == d.path && n.sha256 != d.sha256) {
                fail(d.path, "changed since the run in " + dir + " started (its sha256 differs); --resume needs the same data");
            }
        }
    }
}

// Claims the output folder for this run (run.json, see io/run_record.h); returns whether an
// earlier run is resumed. Starting over removes what the earlier run wrote, and nothing else.
bool prepare_out_dir(const std::string & dir, bool resume) {
    std::error_code   ec;
    const bool        has_state = fs::exists(fs::path(dir) / "trainer_state.json", ec);
    const RunRecord * run       = current_run();
    claim_output_folder(dir, run ? *run : library_run(), resume && has_state);
    if (const int64_t removed = remove_interrupted_writes(dir); removed > 0) {
        spdlog::info("{}: removed {} files left half-written by an interrupted run", dir, removed);
    }
    if (resume && has_state) {
        if (run) {
            check_resume(dir, *run);
        }
        return true;
    }
    if (resume) {
        spdlog::warn("{}: no earlier run to resume (no trainer_state.json); starting from the beginning", dir);
    }
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
        spdlog::warn("{}: starting over; the earlier output is replaced (use --resume to continue a run)", dir);
        remove_earlier_output(dir);
    }
    fs::create_directories(fs::path(dir) / "checkpoint", ec);
    if (ec) {
        fail(dir, "cannot create directory: " + ec.message());
    }
    return false;
}

// run.json of this run (when a program runs it), listing what the folder holds now.
void record_run(const std::string & dir, bool finished) {
    if (const RunRecord * run = current_run()) {
        RunRecord r = *run;
        if (const std::optional<RunRecord> then = read_run_record(dir); then && !then->started.empty()) {
            r.started = then->started;  // a resumed run started when it first did
        }
        r.finished = finished ? utc_now() : "";
        write_run_record(dir, r);
    }
}

// SIGINT/SIGTERM while training: the step under way ends, a checkpoint is written, then train()
// stops. The previous handlers come back when training ends.
volatile std::sig_atomic_t g_stop_signal = 0;

// The first signal asks for a stop at the next step boundary; a second one ends the process at
// once (the default action), for when the step or evaluation under way takes too long.
void on_stop_signal(int sig) {
    g_stop_signal = sig;
    std::signal(sig, SIG_DFL);
    static const char note[] = "\nstopping after the step or evaluation under way, with a checkpoint (again: quit at once)\n";
    const ssize_t     written = ::write(STDERR_FILENO, note, sizeof note - 1);
    static_cast<void>(written);  // nothing to do if stderr is gone
}

class StopSignals {
  public:
    StopSignals() {
        g_stop_signal = 0;
        previous_int_  = std::signal(SIGINT, on_stop_signal);
        previous_term_ = std::signal(SIGTERM, on_stop_signal);
    }
    ~StopSignals() {
        std::signal(SIGINT, previous_int_);
        std::signal(SIGTERM, previous_term_);
    }
    StopSignals(const StopSignals &)             = delete;
    StopSignals & operator=(const StopSignals &) = delete;
    int received() const { return g_stop_signal; }

  private:
    void (*previous_int_)(int);
    void (*previous_term_)(int);
};

// Keeps the newest `keep` checkpoint/state-<step>.safetensors (at least the one just written).
void prune_checkpoints(const fs::path & out, int64_t keep) {
    std::vector<std::pair<int64_t, fs::path>> found;
    std::error_code                           ec;
    for (const auto & entry : fs::directory_iterator(out / "checkpoint", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("state-", 0) == 0 && entry.path().extension() == ".safetensors") {
            found.emplace_back(std::atoll(name.c_str() + 6), entry.path());
        }
    }
    std::sort(found.begin(), found.end());
    for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(keep, 1)) < found.size(); ++i) {
        fs::remove(found[i].second, ec);
    }
}

// Rank 0's optimizer state (a resumed run's) on every rank.
void broadcast_optimizer(AdamW & optimizer) {
    if (dist::size() == 1) {
        return;
    }
    for (auto & [name, t] : optimizer.state()) {
        if (name != "adamw.step") {
            dist::broadcast(t);  // the optimizer's own tensors, in place
        }
    }
    at::Tensor steps = at::scalar_tensor(optimizer.steps(), at::kLong).reshape({ 1 });
    dist::broadcast(steps);
    optimizer.set_steps(steps.item<int64_t>());
}

}  // namespace

std::string describe(const TrainResult & r) {
    std::string metric = r.best_metric;
    std::replace(metric.begin(), metric.end(), '_', ' ');
    char line[160];
    std::snprintf(line, sizeof line, "best %s %.4f at step %lld of %lld%s", metric.c_str(), r.best,
                  static_cast<long long>(r.best_step), static_cast<long long>(r.steps), r.stopped_early ? " (stopped early)" : "");
    return line;
}

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
    // Several processes (dist/world.h): every rank takes the same global batches, of batch_size per
    // rank times the ranks, and trains on its share of each; rank 0 alone touches the output folder.
    const int  world = dist::size();
    const bool main  = dist::is_main();
    const bool resuming = dist::from_main([&] { return prepare_out_dir(out_dir, o.resume) ? "1" : "0"; }) == "1";
    const fs::path out(out_dir);
    TrainOptions   global = o;
    global.batch_size     = o.batch_size * world;
    std::vector<std::vector<int64_t>> batches = epoch_batches(task, 0, global);
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
    state.world_size = world;
    if (resuming) {
        const std::string state_path = (out / "trainer_state.json").string();
        const std::string text       = dist::from_main([&] {
            const RunState s = from_json(read_json_file(state_path), state_path, o.best_metric);
            if (s.world_size != world) {
                fail(state_path, "the run was trained by " + std::to_string(s.world_size) + " process" +
                                     (s.world_size == 1 ? "" : "es") + "; --resume needs as many (" + std::to_string(world) +
                                     " started), so that every step sees the same batches");
            }
            return to_json(s, 0.0, o.best_metric).dump();
        });
        state = from_json(nlohmann::json::parse(text), state_path, o.best_metric);
        if (total < state.step) {
            fail(o.steps > 0 ? "--steps" : "--epochs", "the run in " + out_dir + " is at step " + std::to_string(state.step) +
                                                           " already; on --resume the steps can only grow (" +
                                                           std::to_string(total) + " asked)");
        }
        if (state.finished && total <= state.total) {
            spdlog::info("{}: the run already finished at step {}; nothing to do (raise --steps or --epochs to extend it)",
                         out_dir, state.step);
            return result_of(state, o.best_metric);
        }
        if (state.finished) {
            spdlog::info("{}: extending the finished run from step {} to {}", out_dir, state.step, total);
            state.finished = state.stopped_early = false;
            state.bad_evals                      = 0;
        }
        if (!state.checkpoint.empty()) {
            dist::from_main([&] {
                const std::string       path = (out / state.checkpoint).string();
                const SafetensorsReader ckpt(path);
                c10::NoGradGuard        no_grad;
                for (const auto & [name, t] : named) {
                    const at::Tensor saved = ckpt.tensor("param." + name);
                    if (saved.sizes() != t.sizes()) {
                        fail(path, "param." + name + " has shape " + c10::str(saved.sizes()) + ", the model's is " +
                                       c10::str(t.sizes()));
                    }
                    t.copy_(saved);
                }
                optimizer.load_state(ckpt);
                return std::string();
            });
            broadcast_optimizer(optimizer);
        }
        spdlog::info("resuming {} at step {}/{}", out_dir, state.step, total);
    }
    state.total = total;
    dist::from_main([&] {
        if (!resuming) {
            // run.json, then the state, before any work: a run killed at any moment can be resumed
            // (from step 0 here), and a folder holding a state always holds its record.
            record_run(out_dir, false);
            write_json_file((out / "trainer_state.json").string(), to_json(state, 0.0, o.best_metric));
        }
        record_run(out_dir, false);
        return std::string();
    });
    for (auto & p : params) {
        dist::broadcast(p);  // every rank starts from rank 0's weights
    }
    if (world > 1) {
        spdlog::info("{} processes: global batch {} = {} per process x {} processes x {} accumulated", world,
                     global.batch_size * o.grad_accum, o.batch_size, world, o.grad_accum);
    }

    // Validation: history, the best model (saved), early stopping, metrics.csv and curves.png.
    const auto evaluate_and_keep_best = [&](RunState & st, double train_loss, double lr) {
        const EvalMetrics m = task.evaluate();
        stop_point("eval");
        st.history.push_back({ st.step, epoch_at(st.step), train_loss, m.loss, m.accuracy, lr, m.extra });
        const double value = o.best_metric == BestMetric::loss ? m.loss : m.accuracy;
        // Ties are no improvement: the earlier model stays.
        const bool better = !st.best || (o.best_metric == BestMetric::loss ? value < *st.best : value > *st.best);
        if (better) {
            st.best      = value;
            st.best_step = st.step;
            st.bad_evals = 0;
        } else {
            ++st.bad_evals;
        }
        spdlog::info("eval at step {}: val loss {:.4f} val accuracy {:.4f} (best {} {:.4f} at step {})", st.step, m.loss,
                     m.accuracy, o.best_metric == BestMetric::loss ? "val loss" : "val accuracy", *st.best, st.best_step);
        st.stopped_early = o.patience > 0 && st.bad_evals >= o.patience;
        st.finished      = st.stopped_early || st.step == total;
        // Rank 0 writes; the others wait for it, and fail with its error if it fails.
        dist::from_main([&] {
            if (better) {
                task.save(out_dir);
            }
            write_text_atomic((out / "metrics.csv").string(), metrics_csv(st.history));
            plot_training_curves((out / "metrics.csv").string(), (out / "curves.png").string());
            return std::string();
        });
    };

    const StopSignals                   signals;
    std::optional<ProgressLine>         progress;
    const std::unique_ptr<GradientSync> sync = world > 1 ? std::make_unique<GradientSync>(params) : nullptr;
    if (main) {
        progress.emplace(total, "steps");
    }
    int64_t           examples = 0;
    auto    started  = std::chrono::steady_clock::now();
    while (state.step < total) {
        // Dropout depends on the step (and the rank) only.
        seed_torch(o.seed * 7919ULL + static_cast<uint64_t>(state.step) + 104729ULL * static_cast<uint64_t>(dist::rank()));
        const double lr = o.lr * lr_factor(schedule, state.step, total, o.warmup);
        // The step's micro-batches: this rank's share of each, and the loss terms (target tokens,
        // images) of every rank's share, so that the step's loss is the mean over all its terms.
        std::vector<std::vector<int64_t>> share(static_cast<size_t>(o.grad_accum));
        std::vector<double>               weight(share.size());
        std::vector<int64_t>              epochs(share.size());
        double                            step_weight = 0;
        for (size_t micro = 0; micro < share.size(); ++micro) {
            const int64_t k = state.step * o.grad_accum + static_cast<int64_t>(micro);  // micro-batches form one stream over epochs
            epochs[micro]   = k / n_batches;
            if (epochs[micro] != cached_epoch) {
                batches      = epoch_batches(task, epochs[micro], global);
                cached_epoch = epochs[micro];
            }
            const auto & batch = batches[static_cast<size_t>(k % n_batches)];
            examples += static_cast<int64_t>(batch.size());
            for (int r = 0; r < world; ++r) {
                const auto [from, to] = share_of(batch.size(), r, world);
                const std::vector<int64_t> part(batch.begin() + static_cast<std::ptrdiff_t>(from),
                                                batch.begin() + static_cast<std::ptrdiff_t>(to));
                const double               w = part.empty() ? 0.0 : task.loss_weight(part);
                step_weight += w;
                if (r == dist::rank()) {
                    share[micro]  = part;
                    weight[micro] = w;
                }
            }
        }
        double step_loss = 0;
        for (size_t micro = 0; micro < share.size(); ++micro) {
            task.set_epoch(epochs[micro]);
            if (sync && micro + 1 == share.size()) {
                sync->arm();  // the last backward of the step starts the all-reduce
            }
            if (!share[micro].empty()) {
                const at::Tensor loss = task.loss(share[micro]) * (weight[micro] / step_weight);
                loss.backward();
                step_loss += loss.item<double>();
            }
            stop_point("step");
        }
        bool stop = signals.received() != 0;
        if (sync) {
            const std::vector<double> sums = sync->finish({ step_loss, stop ? 1.0 : 0.0 });
            step_loss                      = sums[0];
            stop                           = sums[1] > 0;  // a signal to any rank stops every rank
        }
        if (!std::isfinite(step_loss)) {
            throw Error("training loss is " + std::to_string(step_loss) + " at step " + std::to_string(state.step) +
                        " (learning rate too high?)");
        }
        const double grad_norm = clip_grad_norm(params, o.max_grad_norm);
        optimizer.step(lr);
        optimizer.zero_grad();
        ++state.step;
        state.loss_sum += step_loss;
        ++state.loss_steps;
        if (progress) {
            char loss_text[32];
            std::snprintf(loss_text, sizeof loss_text, "loss %.4f", step_loss);
            progress->update(state.step, loss_text);
        }
        if (o.log_every > 0 && state.step % o.log_every == 0) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            spdlog::info("step {}/{} epoch {:.2f} loss {:.4f} lr {:.3g} grad-norm {:.3f} {:.1f} examples/s", state.step, total,
                         epoch_at(state.step), step_loss, lr, grad_norm, static_cast<double>(examples) / std::max(secs, 1e-9));
        }
        const bool evaluate_now = state.step % eval_every == 0 || state.step == total;
        if (!evaluate_now && !stop && !(o.save_every > 0 && state.step % o.save_every == 0)) {
            continue;
        }
        if (evaluate_now) {
            evaluate_and_keep_best(state, state.loss_sum / static_cast<double>(std::max<int64_t>(state.loss_steps, 1)), lr);
            state.loss_sum   = 0;
            state.loss_steps = 0;
        }

        // Checkpoint: weights + optimizer under a new name, then the state that points to it.
        state.checkpoint = "checkpoint/state-" + std::to_string(state.step) + ".safetensors";
        dist::from_main([&] {  // the other ranks stop or go on once the checkpoint is there
            NamedTensors ckpt = optimizer.state();
            for (const auto & [name, t] : named) {
                ckpt.emplace_back("param." + name, t);
            }
            write_safetensors((out / state.checkpoint).string(), ckpt);
            write_json_file((out / "trainer_state.json").string(), to_json(state, epoch_at(state.step), o.best_metric));
            prune_checkpoints(out, o.save_total_limit);
            record_run(out_dir, state.finished);
            return std::string();
        });
        if (state.stopped_early) {
            spdlog::info("early stop: no better {} in {} evaluations", metric_name(o.best_metric), o.patience);
            break;
        }
        // Alone, also a signal that came during the evaluation; several ranks stop together.
        if (world > 1 ? stop : signals.received() != 0) {
            const int sig = signals.received();
            fail(out_dir, std::string(sig == SIGINT ? "interrupted (SIGINT)" : sig == SIGTERM ? "terminated (SIGTERM)"
                                                                                              : "stopped by a signal to another rank") +
                              " at step " + std::to_string(state.step) + " of " + std::to_string(total) +
                              "; a checkpoint is saved: run the same command with --resume to continue");
        }
    }
    return result_of(state, o.best_metric);
}

}  // namespace cgm
