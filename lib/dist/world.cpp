#include "dist/world.h"

#include "core/error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#if defined(CGM_NCCL) && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define CGM_HAS_NCCL 1
#endif

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace cgm::dist {
namespace {

// LibTorch 2 made the backends (Gloo, NCCL) a layer under ProcessGroup; their collectives are the same.
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

struct State {
    WorldEnv                        env;
    std::chrono::milliseconds       timeout{ 0 };
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<Group>       cpu;   // Gloo: CPU tensors (and every gather of bytes)
    c10::intrusive_ptr<Group>       cuda;  // NCCL: CUDA tensors (CUDA builds, --device cuda)
};

State & state() {
    static State s;
    return s;
}

// The group that moves tensors of t's device.
Group & group_for(const at::Tensor & t) {
    State & s = state();
    if (t.is_cuda()) {
        if (!s.cuda) {
            throw Error("a CUDA tensor in a collective of a run that joined on the CPU");
        }
        return *s.cuda;
    }
    return *s.cpu;
}

std::string first_line(const std::string & s) {
    return s.substr(0, s.find('\n'));
}

std::string message_of(const std::exception & e) {
    if (const auto * c10 = dynamic_cast<const c10::Error *>(&e)) {
        return first_line(c10->what_without_backtrace());
    }
    return first_line(e.what());
}

std::string of_world(int rank) {
    return "rank " + std::to_string(rank) + " of " + std::to_string(state().env.size);
}

std::string host_name() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return name;
}

// Whether rank r's process, recorded at start as "<host> <pid>", is known to be gone: it ran on
// this machine and its pid is free or a zombie. (Elsewhere only its silence tells.)
bool gone_from_here(int r) {
    const std::vector<uint8_t> v = state().store->get("process/" + std::to_string(r));
    std::istringstream         in(std::string(v.begin(), v.end()));
    std::string                host;
    long                       pid = 0;
    in >> host >> pid;
    if (host != host_name() || pid <= 0) {
        return false;
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string   line;
    if (!std::getline(stat, line)) {
        return true;
    }
    const size_t close = line.rfind(')');  // "pid (name) state ..."
    return close != std::string::npos && close + 2 < line.size() && (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

// After a failed collective: each survivor signs in under "rollcall/<rank>" and waits up to 10 s for
// the others (not for those whose process is gone from this machine); whoever has not signed in is
// named. When the store itself is gone, its host is.
[[noreturn]] void lost_rank(const std::string & what, const std::string & cause) {
    State &          s = state();
    std::vector<int> missing;
    try {
        s.store->set("rollcall/" + std::to_string(s.env.rank), std::vector<uint8_t>{ 1 });
        const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(s.timeout, std::chrono::seconds(10));
        for (bool waiting = true; waiting;) {
            missing.clear();
            waiting = false;
            for (int r = 0; r < s.env.size; ++r) {
                if (r != s.env.rank && !s.store->check({ "rollcall/" + std::to_string(r) })) {
                    missing.push_back(r);
                    waiting = waiting || !gone_from_here(r);
                }
            }
            waiting = waiting && std::chrono::steady_clock::now() < deadline;
            if (waiting) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    } catch (const std::exception &) {
        const std::string host = s.env.agent_store ? "torchrun's agent" : of_world(0);
        throw Error(what + " failed and the rendezvous store at " + s.env.master_addr + ":" + std::to_string(s.env.master_port) +
                    " is gone with it (" + host + " exited or was killed; its own output says why): " + cause);
    }
    if (missing.empty()) {
        throw Error(what + " failed on " + of_world(s.env.rank) + ": " + cause);
    }
    std::string names;
    for (const int r : missing) {
        names += (names.empty() ? "" : ", ") + std::to_string(r);
    }
    throw Error(std::string(missing.size() == 1 ? "rank " : "ranks ") + names + " of " + std::to_string(s.env.size) +
                " stopped answering during " + what + " (exited, killed or stuck past the timeout; its own output says why): " + cause);
}

// Runs a collective; its failure becomes lost_rank's Error. (Outside inference mode: Gloo writes
// into the tensors it receives.)
template <class F> void collective(const std::string & what, F && run) {
    c10::InferenceMode not_inference(false);
    try {
        run();
    } catch (const Error &) {
        throw;
    } catch (const std::exception & e) {
        lost_rank(what, message_of(e));
    }
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const WorldEnv & env) {
    if (const char * name = std::getenv("GLOO_SOCKET_IFNAME")) {
        return c10d::ProcessGroupGloo::createDeviceForInterface(name);
    }
    if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
        return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");  // one machine: loopback
    }
    return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

void init(const WorldEnv & env, std::chrono::milliseconds timeout, c10::Device device) {
    State & s = state();
    s.env     = env;
    s.timeout = timeout;
    if (env.size == 1) {
        return;
    }
#ifndef CGM_HAS_NCCL
    if (device.is_cuda()) {
        throw Error("--device " + device.str() + ": several processes on CUDA need LibTorch's NCCL, which this build "
                    "lacks (build against a CUDA LibTorch with -DCGM_CUDA=ON, where nccl.h is found)");
    }
#endif
    const std::string where = "MASTER_ADDR:MASTER_PORT " + env.master_addr + ":" + std::to_string(env.master_port);
    try {
        c10d::TCPStoreOptions options;
        options.port       = static_cast<uint16_t>(env.master_port);
        options.isServer   = !env.agent_store && env.rank == 0;
        options.numWorkers = static_cast<size_t>(env.size);
        options.timeout    = timeout;
        const auto tcp     = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
        s.store            = c10::make_intrusive<c10d::PrefixStore>("cgm/" + env.restart, tcp);
        const std::string process = host_name() + " " + std::to_string(::getpid());
        s.store->set("process/" + std::to_string(env.rank), std::vector<uint8_t>(process.begin(), process.end()));
        auto gloo          = c10d::ProcessGroupGloo::Options::create(timeout);
        gloo->devices.push_back(gloo_device(env));
        s.cpu = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", s.store), env.rank,
                                                            env.size, gloo);
#ifdef CGM_HAS_NCCL
        if (device.is_cuda()) {
            // A collective that fails or outlasts the timeout throws from wait(), as Gloo's do,
            // instead of the watchdog ending the process.
            ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
            auto nccl     = c10d::ProcessGroupNCCL::Options::create();
            nccl->timeout = timeout;
            s.cuda = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", s.store),
                                                                 env.rank, env.size, nccl);
        }
#endif
    } catch (const std::exception & e) {
        throw Error(where + ": " + of_world(env.rank) + " could not join the other " + std::to_string(env.size - 1) +
                    " within " + std::to_string(timeout.count() / 1000) + " s: " + message_of(e));
    }
}

int rank() {
    return state().env.rank;
}

int size() {
    return state().env.size;
}

bool is_main() {
    return state().env.rank == 0;
}

const WorldEnv & env() {
    return state().env;
}

struct PendingSum::Work {
    c10::intrusive_ptr<c10d::Work> work;
    std::vector<at::Tensor>        tensors;
};

PendingSum::PendingSum()                                  = default;
PendingSum::~PendingSum()                                 = default;
PendingSum::PendingSum(PendingSum &&) noexcept            = default;
PendingSum & PendingSum::operator=(PendingSum &&) noexcept = default;

void PendingSum::wait() {
    if (work_) {
        collective("an all-reduce", [&] { work_->work->wait(); });
        work_.reset();
    }
}

PendingSum sum_async(at::Tensor tensor) {
    PendingSum pending;
    if (size() > 1) {
        pending.work_          = std::make_unique<PendingSum::Work>();
        pending.work_->tensors = { std::move(tensor) };
        collective("an all-reduce", [&] { pending.work_->work = group_for(pending.work_->tensors[0]).allreduce(pending.work_->tensors); });
    }
    return pending;
}

void sum(at::Tensor & tensor) {
    sum_async(tensor).wait();
}

void broadcast(at::Tensor & tensor) {
    if (size() > 1) {
        std::vector<at::Tensor> tensors{ tensor };
        collective("a broadcast", [&] { group_for(tensor).broadcast(tensors)->wait(); });
    }
}

std::vector<std::string> all_gather(const std::string & mine) {
    if (size() == 1) {
        return { mine };
    }
    c10::InferenceMode                   not_inference(false);  // tensors Gloo may write into
    const auto                           n = static_cast<size_t>(size());
    std::vector<std::vector<at::Tensor>> lengths(1);
    std::vector<at::Tensor>              length{ at::full({ 1 }, static_cast<int64_t>(mine.size()), at::kLong) };
    for (size_t r = 0; r < n; ++r) {
        lengths[0].push_back(at::empty({ 1 }, at::kLong));
    }
    collective("a gather", [&] { state().cpu->allgather(lengths, length)->wait(); });
    int64_t longest = 0;
    for (const auto & l : lengths[0]) {
        longest = std::max(longest, l.item<int64_t>());
    }
    std::vector<at::Tensor> bytes{ at::zeros({ std::max<int64_t>(longest, 1) }, at::kByte) };
    std::copy(mine.begin(), mine.end(), bytes[0].data_ptr<uint8_t>());
    std::vector<std::vector<at::Tensor>> all(1);
    for (size_t r = 0; r < n; ++r) {
        all[0].push_back(at::empty_like(bytes[0]));
    }
    collective("a gather", [&] { state().cpu->allgather(all, bytes)->wait(); });
    std::vector<std::string> out;
    for (size_t r = 0; r < n; ++r) {
        const auto * p = all[0][r].data_ptr<uint8_t>();
        out.emplace_back(p, p + lengths[0][r].item<int64_t>());
    }
    return out;
}

std::string from_main(const std::function<std::string()> & fn) {
    if (size() == 1) {
        return fn();
    }
    // On rank 0: "1" + the result, or "0" + the error; broadcast as a gather of one rank's bytes.
    std::string mine;
    if (is_main()) {
        try {
            mine = "1" + fn();
        } catch (const c10::Error & e) {
            mine = "0" + first_line(e.what_without_backtrace());
        } catch (const std::exception & e) {
            mine = "0" + first_line(e.what());
        }
    }
    const std::string answer = all_gather(mine).front();
    if (answer.empty() || answer[0] != '1') {
        throw Error(answer.empty() ? std::string("rank 0 sent nothing") : answer.substr(1));
    }
    return answer.substr(1);
}

void finish() {
    State & s = state();
    s.cuda.reset();
    s.cpu.reset();
    s.store.reset();
}

void barrier() {
    if (size() > 1) {
        collective("a barrier", [&] { state().cpu->barrier()->wait(); });
    }
}

}  // namespace cgm::dist
