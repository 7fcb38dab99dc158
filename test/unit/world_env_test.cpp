// Where a process stands among the processes of a run: the environment torchrun, srun and
// scripts/launch set, malformed values named, and how items are shared out among the ranks.
#include "core/error.h"
#include "dist/share.h"
#include "dist/world_env.h"

#include <catch2/catch.hpp>

#include <map>

using namespace cgm;
using Catch::Matchers::Contains;

namespace {

EnvLookup env_of(const std::map<std::string, std::string> & vars) {
    return [vars](const std::string & name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
}

std::string error_of(const std::map<std::string, std::string> & vars) {
    try {
        read_world_env(env_of(vars));
    } catch (const Error & e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("no launcher: one process", "[unit][dist]") {
    const WorldEnv e = read_world_env(env_of({}));
    REQUIRE(e.size == 1);
    REQUIRE(e.rank == 0);
    REQUIRE(e.launcher.empty());
    // A world of one is one process, whatever else is set.
    REQUIRE(read_world_env(env_of({ { "WORLD_SIZE", "1" }, { "RANK", "0" }, { "MASTER_PORT", "x" } })).size == 1);
}

TEST_CASE("torchrun's variables", "[unit][dist]") {
    const WorldEnv e = read_world_env(env_of({ { "WORLD_SIZE", "4" }, { "RANK", "3" }, { "LOCAL_RANK", "1" },
                                               { "LOCAL_WORLD_SIZE", "2" }, { "MASTER_ADDR", "node7" }, { "MASTER_PORT", "29411" },
                                               { "TORCHELASTIC_RUN_ID", "x" }, { "TORCHELASTIC_USE_AGENT_STORE", "True" },
                                               { "TORCHELASTIC_RESTART_COUNT", "2" } }));
    REQUIRE(e.size == 4);
    REQUIRE(e.rank == 3);
    REQUIRE(e.local_rank == 1);
    REQUIRE(e.local_size == 2);
    REQUIRE(e.master_addr == "node7");
    REQUIRE(e.master_port == 29411);
    REQUIRE(e.agent_store);
    REQUIRE(e.restart == "2");
    REQUIRE(e.launcher == "torchrun");
}

TEST_CASE("RANK and WORLD_SIZE alone (scripts/launch, by hand)", "[unit][dist]") {
    const WorldEnv e = read_world_env(env_of({ { "WORLD_SIZE", "2" }, { "RANK", "1" } }));
    REQUIRE(e.size == 2);
    REQUIRE(e.local_rank == 1);  // one machine: the local rank is the rank
    REQUIRE(e.local_size == 2);
    REQUIRE(e.master_addr == "127.0.0.1");
    REQUIRE(e.master_port == 29500);
    REQUIRE_FALSE(e.agent_store);
    REQUIRE(e.launcher == "env");
}

TEST_CASE("Slurm's srun variables", "[unit][dist]") {
    const WorldEnv e = read_world_env(env_of({ { "SLURM_PROCID", "5" }, { "SLURM_NTASKS", "16" }, { "SLURM_STEP_NUM_TASKS", "7" },
                                               { "SLURM_LOCALID", "1" }, { "SLURM_STEP_TASKS_PER_NODE", "3(x2),1" },
                                               { "SLURM_NODEID", "1" }, { "SLURM_JOB_NODELIST", "gpu[07-09,12]" },
                                               { "SLURM_STEP_NODELIST", "gpu[08-09,12]" } }));
    REQUIRE(e.size == 7);  // the step's tasks, not the allocation's
    REQUIRE(e.rank == 5);
    REQUIRE(e.local_rank == 1);
    REQUIRE(e.local_size == 3);  // on node 1
    REQUIRE(e.master_addr == "gpu08");  // the step's first node
    REQUIRE(e.launcher == "slurm");
    REQUIRE(read_world_env(env_of({ { "SLURM_PROCID", "6" }, { "SLURM_STEP_NUM_TASKS", "7" }, { "SLURM_NODEID", "2" },
                                    { "SLURM_STEP_TASKS_PER_NODE", "3(x2),1" }, { "MASTER_ADDR", "h" } }))
                .local_size == 1);
    // MASTER_ADDR, when given, wins over the node list.
    REQUIRE(read_world_env(env_of({ { "SLURM_PROCID", "0" }, { "SLURM_STEP_NUM_TASKS", "2" }, { "MASTER_ADDR", "10.0.0.9" } })).master_addr ==
            "10.0.0.9");
    // torchrun inside an allocation: its variables win.
    REQUIRE(read_world_env(env_of({ { "SLURM_PROCID", "0" }, { "SLURM_STEP_NUM_TASKS", "8" }, { "WORLD_SIZE", "2" }, { "RANK", "1" } })).size == 2);
    // A batch script (no srun step): one process, whatever the allocation holds.
    REQUIRE(read_world_env(env_of({ { "SLURM_PROCID", "0" }, { "SLURM_NTASKS", "4" }, { "SLURM_JOB_NODELIST", "n[1-2]" } })).size == 1);
}

TEST_CASE("the first host of a Slurm node list", "[unit][dist]") {
    REQUIRE(first_slurm_host("gpu[07-09,12],cpu1") == "gpu07");
    REQUIRE(first_slurm_host("node3,node4") == "node3");
    REQUIRE(first_slurm_host("single") == "single");
    REQUIRE(first_slurm_host("a1,b[1-2]") == "a1");
    REQUIRE(first_slurm_host("n[5,7]") == "n5");
    REQUIRE(first_slurm_host("n[1-2]-ib,m3") == "n1-ib");
    REQUIRE_THROWS_WITH(first_slurm_host("n[1-2"), Contains("SLURM_JOB_NODELIST") && Contains("unclosed"));
}

TEST_CASE("a malformed world is named", "[unit][dist]") {
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "2" } }), Contains("RANK") && Contains("not set"));
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "2" }, { "RANK", "2" } }), Contains("RANK: '2'") && Contains("0..1"));
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "two" }, { "RANK", "0" } }), Contains("WORLD_SIZE: 'two'"));
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "0" }, { "RANK", "0" } }), Contains("WORLD_SIZE: '0'"));
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "2" }, { "RANK", "0" }, { "MASTER_PORT", "70000" } }), Contains("MASTER_PORT: '70000'"));
    REQUIRE_THAT(error_of({ { "WORLD_SIZE", "2" }, { "RANK", "0" }, { "LOCAL_RANK", "-1" } }), Contains("LOCAL_RANK"));
    REQUIRE_THAT(error_of({ { "SLURM_PROCID", "0" }, { "SLURM_STEP_NUM_TASKS", "2" } }), Contains("MASTER_ADDR") && Contains("SLURM_JOB_NODELIST"));
    REQUIRE_THAT(error_of({ { "SLURM_PROCID", "3" }, { "SLURM_STEP_NUM_TASKS", "2" }, { "MASTER_ADDR", "h" } }), Contains("SLURM_PROCID: '3'"));
    REQUIRE_THAT(error_of({ { "SLURM_PROCID", "0" }, { "SLURM_STEP_NUM_TASKS", "2" }, { "SLURM_STEP_NODELIST", "a[1" } }),
                 Contains("SLURM_STEP_NODELIST: 'a[1'"));
    REQUIRE_THAT(error_of({ { "SLURM_PROCID", "0" }, { "SLURM_STEP_NUM_TASKS", "2" }, { "MASTER_ADDR", "h" },
                            { "SLURM_STEP_TASKS_PER_NODE", "1(x2)" }, { "SLURM_NODEID", "2" } }),
                 Contains("SLURM_STEP_TASKS_PER_NODE") && Contains("no node 2"));
}

TEST_CASE("shares: contiguous, in rank order, as even as can be", "[unit][dist]") {
    for (size_t n : { 0, 1, 2, 7, 8, 45 }) {
        for (int size : { 1, 2, 3, 8 }) {
            size_t next = 0, smallest = n, largest = 0;
            for (int r = 0; r < size; ++r) {
                const auto [from, to] = share_of(n, r, size);
                REQUIRE(from == next);
                next     = to;
                smallest = std::min(smallest, to - from);
                largest  = std::max(largest, to - from);
            }
            REQUIRE(next == n);
            REQUIRE(largest - std::min(smallest, largest) <= 1);
        }
    }
    REQUIRE(share_of(1, 0, 2) == std::pair<size_t, size_t>{ 0, 0 });  // a rank may get nothing
    REQUIRE(share_of(1, 1, 2) == std::pair<size_t, size_t>{ 0, 1 });
}
