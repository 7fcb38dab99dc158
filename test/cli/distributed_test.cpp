// Several processes (Gloo over loopback): two ranks with batch b train exactly what one process
// trains with batch 2b (LoRA, full fine-tuning, a CGM gate; with gradient accumulation; a last
// batch too small for every rank to get an example), to float32 reduction-order tolerance;
// evaluate and benchmark write the predictions one process writes, byte for byte; a killed or
// stuck rank ends the run with one line naming it, and --resume continues; a resume with another
// number of processes is refused. Launched by scripts/launch, by hand (RANK, WORLD_SIZE, ...) and
// by torchrun when the LibTorch's own is installed.
#include "io/safetensors.h"
#include "support/cli_workspace.h"

#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

using namespace cgm;
using namespace cgm::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Float32 sums in another order (a ring all-reduce, then the optimizer's update on it): measured
// differences are below 3e-7 on these tiny models.
constexpr double kTolerance = 1e-5;

std::string launch(int n) {
    return std::string(CGM_SOURCE_DIR) + "/scripts/launch " + std::to_string(n) + " -- ";
}

// Runs `program` on n processes through scripts/launch (exit 0 required).
void run_on(int n, const std::string & program, const std::string & args) {
    const ProgramResult r = run_program(program, args, launch(n));
    INFO(program << " on " << n << " processes: " << r.err);
    REQUIRE(r.exit_code == 0);
}

// Every tensor of two safetensors files is close (or, with tolerance 0, equal).
void require_same_tensors(const std::string & a, const std::string & b, double tolerance = kTolerance) {
    INFO(a << " vs " << b);
    const SafetensorsReader x(a), y(b);
    REQUIRE(x.names() == y.names());
    for (const auto & name : x.names()) {
        INFO(name);
        const at::Tensor u = x.tensor(name).to(at::kDouble), v = y.tensor(name).to(at::kDouble);
        REQUIRE(u.sizes() == v.sizes());
        REQUIRE((u - v).abs().max().item<double>() <= tolerance * (1.0 + v.abs().max().item<double>()));
    }
}

// The rows of metrics.csv, each a list of numbers.
std::vector<std::vector<double>> metrics_rows(const std::string & dir) {
    std::istringstream               in(read_bytes(dir + "/metrics.csv"));
    std::vector<std::vector<double>> rows;
    std::string                      line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        rows.emplace_back();
        std::istringstream cells(line);
        for (std::string cell; std::getline(cells, cell, ',');) {
            rows.back().push_back(cell.empty() ? 0.0 : std::stod(cell));
        }
    }
    return rows;
}

void require_same_metrics(const std::string & a, const std::string & b) {
    const auto x = metrics_rows(a), y = metrics_rows(b);
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) {
        REQUIRE(x[i].size() == y[i].size());
        for (size_t j = 0; j < x[i].size(); ++j) {
            REQUIRE(x[i][j] == Approx(y[i][j]).epsilon(kTolerance).margin(1e-9));
        }
    }
}

// The first 45 training records: with a global batch of 4 the epoch ends with a batch of one, so
// one of two ranks has no example in that step.
std::string odd_train_file(const Workspace & w) {
    const std::string path = w.file("train45.jsonl");
    if (!fs::exists(path)) {
        std::istringstream in(read_bytes(w.data + "/train.jsonl"));
        std::string        out, line;
        for (int i = 0; i < 45 && std::getline(in, line); ++i) {
            out += line + "\n";
        }
        write_bytes(path, out);
    }
    return path;
}

// A port nothing listens on now.
int free_port() {
    const int   fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family      = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t size = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &size);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string rank_env(int rank, int size, int port) {
    return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(size) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
           std::to_string(port);
}

struct RankFailure {
    ProgramResult rank0;
    double        seconds = 0;  // from rank 1's stop (or kill) to rank 0's end
};

// lora-finetune as rank 0 of 2, beside a rank 1 that stops itself at `stop_at` and is then killed
// (kill) or left stopped until rank 0 has ended.
RankFailure rank0_beside_stopped_rank1(const std::string & args, const std::string & stop_at, bool kill) {
    const int  port  = free_port();
    auto       rank0 = std::async(std::launch::async, [&] { return run_program("lora-finetune", args, rank_env(0, 2, port) + " "); });
    StoppedProgram rank1("lora-finetune", args, stop_at, rank_env(1, 2, port));
    REQUIRE(rank1.pid() > 0);
    const auto since = std::chrono::steady_clock::now();
    if (kill) {
        rank1.kill();
    }
    RankFailure f;
    f.rank0   = rank0.get();
    f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
    return f;
}

struct DropoutFree {
    std::unique_ptr<Workspace> w;
    std::string                base, train;
    std::string                args;  // --base, data and quick settings
};

// A base without dropout (ranks draw other dropout masks than one process) and the odd-sized data.
DropoutFree dropout_free(const std::string & what) {
    DropoutFree d;
    d.w = make_workspace(what);
    if (d.w) {
        d.base  = d.w->save_base("base-nodrop", { { "dropout_rate", 0.0 } });
        d.train = odd_train_file(*d.w);
        d.args  = "--base " + d.base + " --train " + d.train + " --val " + d.w->data +
                 "/val.jsonl --max-target-len 4 --val-scoring rank --log-level warn";
    }
    return d;
}

struct Trainer {
    std::string program, args, weights;
};

std::vector<Trainer> trainers(const DropoutFree & d) {
    const std::string e1 = train_lora(*d.w, "expert-1", "--targets q,v --seed 1 --dropout 0", d.base);
    const std::string e2 = train_lora(*d.w, "expert-2", "--targets q,wo --seed 2 --dropout 0", d.base);
    return { { "lora-finetune", "--targets q,v --dropout 0", "adapter_model.safetensors" },
             { "finetune", "", "model.safetensors" },
             { "cgm-train", "--expert a=" + e1 + " --expert b=" + e2, "gate.safetensors" } };
}

}  // namespace

TEST_CASE("two processes with batch b train what one process trains with batch 2b", "[cli][dist]") {
    const DropoutFree d = dropout_free("distributed training");
    if (!d.w) {
        return;
    }
    for (const Trainer & t : trainers(d)) {
        SECTION(t.program) {
            // 45 examples, global batch 4: 12 steps are one epoch, the last step has one example.
            const std::string common = d.args + " " + t.args + " --steps 12 --eval-every 6 --save-total-limit 2";
            const std::string one = d.w->file(t.program + "-1"), two = d.w->file(t.program + "-2");
            const std::string accum = d.w->file(t.program + "-2-accum");
            run_ok(t.program, common + " --batch-size 4 --out " + one);
            run_on(2, t.program, common + " --batch-size 2 --out " + two);
            require_same_tensors(one + "/" + t.weights, two + "/" + t.weights);
            for (const char * state : { "/checkpoint/state-6.safetensors", "/checkpoint/state-12.safetensors" }) {
                require_same_tensors(one + state, two + state);  // weights and AdamW moments
            }
            require_same_metrics(one, two);
            REQUIRE(read_json(two + "/trainer_state.json").at("world_size") == 2);
            REQUIRE(read_json(one + "/trainer_state.json").at("world_size") == 1);

            // Two processes with batch 1 and two micro-batches a step train what one process does with
            // batch 2 and two micro-batches. (Not always what batch 4 does: cgm-train's round-robin
            // batching takes each micro-batch from one domain.)
            const std::string accum_args = d.args + " " + t.args + " --steps 6 --eval-every 3 --grad-accum 2";
            const std::string one_accum  = d.w->file(t.program + "-1-accum");
            run_ok(t.program, accum_args + " --batch-size 2 --out " + one_accum);
            run_on(2, t.program, accum_args + " --batch-size 1 --out " + accum);
            require_same_tensors(one_accum + "/" + t.weights, accum + "/" + t.weights);
            require_same_tensors(one_accum + "/checkpoint/state-6.safetensors", accum + "/checkpoint/state-6.safetensors");
            require_same_metrics(one_accum, accum);
        }
    }
}

TEST_CASE("evaluation and benchmark on several processes write what one process writes", "[cli][dist]") {
    const DropoutFree d = dropout_free("distributed evaluation");
    if (!d.w) {
        return;
    }
    const std::vector<Trainer> t    = trainers(d);
    const std::string          gate = d.w->file("gate");
    run_ok("cgm-train", d.args + " " + t[2].args + " --steps 2 --batch-size 4 --out " + gate);
    const std::string data = d.w->data + "/test.jsonl " + d.w->data + "/val.jsonl " + d.train;
    for (const std::string scoring : { "rank", "generate" }) {
        // 57 records in batches of 4 (and cut where the domain changes): uneven shares for 2 and 3 ranks.
        const std::string args = "--model " + gate + " --data " + data + " --scoring " + scoring + " --eval-batch-size 4";
        const std::string one  = d.w->file("eval-1-" + scoring);
        run_ok("evaluate", args + " --out " + one);
        for (int n : { 2, 3 }) {
            const std::string many = d.w->file("eval-" + std::to_string(n) + "-" + scoring);
            run_on(n, "evaluate", args + " --out " + many);
            for (const char * file : { "predictions.csv", "routing.csv", "gate_report.json" }) {
                INFO(file << " from " << n << " processes, " << scoring);
                REQUIRE(read_bytes(many + "/" + file) == read_bytes(one + "/" + file));
            }
            require_same_tensors(one + "/gate_weights.safetensors", many + "/gate_weights.safetensors", 0.0);
            nlohmann::json a = read_json(one + "/metrics.json"), b = read_json(many + "/metrics.json");
            a.erase("examples_per_second");
            b.erase("examples_per_second");
            REQUIRE(a == b);
        }
    }
    const std::string runs = "--run gate=" + gate + " --run lora=" + d.w->file("expert-1") + " --data " + data;
    run_ok("benchmark", runs + " --out " + d.w->file("bench-1"));
    run_on(2, "benchmark", runs + " --out " + d.w->file("bench-2"));
    for (const char * file : { "predictions-gate.csv", "predictions-lora.csv" }) {
        INFO(file);
        REQUIRE(read_bytes(d.w->file("bench-2") + "/" + file) == read_bytes(d.w->file("bench-1") + "/" + file));
    }
}

TEST_CASE("a killed or stuck rank ends the run with one line naming it; --resume continues", "[cli][dist][kill]") {
    const DropoutFree d = dropout_free("a killed rank");
    if (!d.w) {
        return;
    }
    const std::string args = d.args + " --targets q,v --dropout 0 --steps 6 --eval-every 3 --save-every 1 --batch-size 2";
    const std::string whole = d.w->file("whole"), cut = d.w->file("cut"), stuck = d.w->file("stuck");
    run_on(2, "lora-finetune", args + " --out " + whole);

    // Rank 1 stops itself in step 4 and is killed there: rank 0 names it and ends.
    const RankFailure killed = rank0_beside_stopped_rank1(args + " --dist-timeout 60 --out " + cut, "step:4", true);
    INFO(killed.rank0.err);
    REQUIRE(killed.rank0.exit_code == 1);
    REQUIRE_THAT(killed.rank0.err, Contains("lora-finetune[rank 0]: error: rank 1 of 2 stopped answering"));
    REQUIRE(std::count(killed.rank0.err.begin(), killed.rank0.err.end(), '\n') == 1);
    REQUIRE(killed.seconds < 5);  // its socket closes at once, and its process is gone from this machine
    REQUIRE(read_json(cut + "/trainer_state.json").at("step") == 3);

    // --resume on two processes ends where the uninterrupted run ends.
    run_on(2, "lora-finetune", args + " --resume --out " + cut);
    require_same_tensors(whole + "/adapter_model.safetensors", cut + "/adapter_model.safetensors");
    require_same_tensors(whole + "/checkpoint/state-6.safetensors", cut + "/checkpoint/state-6.safetensors");
    require_same_metrics(whole, cut);

    // Rank 1 stopped and left alone: rank 0 gives up after --dist-timeout and names it.
    const RankFailure stuck_rank = rank0_beside_stopped_rank1(args + " --dist-timeout 3 --out " + stuck, "step:2", false);
    INFO(stuck_rank.rank0.err);
    REQUIRE(stuck_rank.rank0.exit_code == 1);
    REQUIRE_THAT(stuck_rank.rank0.err, Contains("rank 1 of 2 stopped answering"));
    REQUIRE(stuck_rank.seconds < 20);  // the 3 s timeout, then at most 3 s for the others to answer
}

TEST_CASE("a Ctrl-C to scripts/launch stops every rank after the same step, with a checkpoint", "[cli][dist][kill]") {
    const DropoutFree d = dropout_free("SIGINT to the launcher");
    if (!d.w) {
        return;
    }
    const std::string out  = d.w->file("interrupted");
    const std::string args = d.args + " --targets q,v --dropout 0 --eval-every 100000 --batch-size 2 --out " + out;
    // 4 s in, SIGINT to launch's whole process group, as a terminal's Ctrl-C sends it: the ranks,
    // in groups of their own, get it once, from launch (twice would end them at once, unsaved).
    const ProgramResult r = run_program("lora-finetune", args + " --steps 1000000",
                                        "setsid sh -c '(sleep 4; kill -INT 0) & exec \"$0\" \"$@\"' " + launch(2));
    INFO(r.err);
    REQUIRE(r.exit_code == 1);
    REQUIRE_THAT(r.err, Contains("lora-finetune[rank 0]: error: " + out + ": interrupted (SIGINT) at step "));
    REQUIRE_THAT(r.err, Contains("lora-finetune[rank 1]: error: " + out + ": interrupted (SIGINT) at step "));
    const int64_t step = read_json(out + "/trainer_state.json").at("step").get<int64_t>();
    REQUIRE(step > 0);
    REQUIRE(fs::exists(out + "/checkpoint/state-" + std::to_string(step) + ".safetensors"));
    REQUIRE_THAT(r.err, Contains("at step " + std::to_string(step) + " of 1000000"));
    run_on(2, "lora-finetune", args + " --steps " + std::to_string(step + 2) + " --resume");
    REQUIRE(read_json(out + "/trainer_state.json").at("step") == step + 2);
}

TEST_CASE("--resume needs as many processes as the run had; single-process programs refuse a world", "[cli][dist]") {
    const DropoutFree d = dropout_free("resume on another number of processes");
    if (!d.w) {
        return;
    }
    const std::string out  = d.w->file("alone");
    const std::string args = d.args + " --targets q,v --batch-size 2 --out " + out;
    run_ok("lora-finetune", args + " --steps 2");
    const auto          before = snapshot(out);
    const ProgramResult r      = run_program("lora-finetune", args + " --steps 4 --resume", launch(2));
    INFO(r.err);
    REQUIRE(r.exit_code == 1);
    REQUIRE_THAT(r.err, Contains("trainer_state.json: the run was trained by 1 process; --resume needs as many (2 started)"));
    REQUIRE_THAT(r.err, Contains("launch: rank"));
    REQUIRE(snapshot(out) == before);

    const ProgramResult p = run_program("prepare-data", "--format wordnet --limit 5 --out " + d.w->file("data2"), "RANK=1 WORLD_SIZE=2 ");
    require_failure(p, kBadInput, { "prepare-data", "runs as one process", "rank 1 of 2" }, d.w->file("data2"));
    // Alone, joining nothing, a program reads --device only if it uses one (a config file may set
    // it for every program of a pipeline).
    run_ok("prepare-data", "--format wordnet --limit 5 --device cuda:7 --out " + d.w->file("data3"));
    const ProgramResult e = run_program("lora-finetune", args + " --steps 1", "RANK=2 WORLD_SIZE=2 ");
    require_failure(e, kBadInput, { "RANK: '2'", "0..1" }, d.w->file("unused"));
}

TEST_CASE("torchrun --no-python launches the training programs", "[cli][dist]") {
    const std::string torchrun = CGM_TORCHRUN;
    if (torchrun.empty() || !fs::exists(torchrun)) {
        WARN("no torchrun of this LibTorch's version installed: torchrun launch not tested");
        return;
    }
    const DropoutFree d = dropout_free("torchrun");
    if (!d.w) {
        return;
    }
    const std::string args = d.args + " --targets q,v --dropout 0 --steps 4 --eval-every 2 --batch-size 2";
    run_on(2, "lora-finetune", args + " --out " + d.w->file("launched"));
    const ProgramResult r = run_program("lora-finetune", args + " --out " + d.w->file("torchrun"),
                                        torchrun + " --nproc-per-node 2 --master-port " + std::to_string(free_port()) + " --no-python ");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    require_same_tensors(d.w->file("launched") + "/adapter_model.safetensors", d.w->file("torchrun") + "/adapter_model.safetensors", 0.0);
}
