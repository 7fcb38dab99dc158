#include "dist/world_env.h"

#include "core/error.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

namespace cgm {
namespace {

// The whole value as an integer in [low, high]; an Error naming the variable otherwise.
int integer(const std::string & name, const std::string & value, long low, long high) {
    char *     end = nullptr;
    const long n   = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n < low || n > high) {
        fail(name, "'" + value + "' is not a whole number in " + std::to_string(low) + ".." + std::to_string(high));
    }
    return static_cast<int>(n);
}

// The tasks of node `node` in SLURM_STEP_TASKS_PER_NODE, "2(x3),1": 2 on each of the first three
// nodes, then 1.
int slurm_tasks_on(const std::string & per_node, int node) {
    const char * name = "SLURM_STEP_TASKS_PER_NODE";
    int          seen = 0;
    for (size_t start = 0; start < per_node.size();) {
        const size_t      end   = std::min(per_node.find(',', start), per_node.size());
        const std::string item  = per_node.substr(start, end - start);
        const size_t      paren = item.find("(x");
        const int tasks = integer(name, item.substr(0, paren), 1, std::numeric_limits<int>::max());
        const int times = paren == std::string::npos ? 1
                                                     : integer(name, item.substr(paren + 2, item.size() - paren - 3), 1,
                                                               std::numeric_limits<int>::max());
        if (node < seen + times) {
            return tasks;
        }
        seen += times;
        start = end + 1;
    }
    fail(name, "'" + per_node + "' lists no node " + std::to_string(node) + " (SLURM_NODEID)");
}

}  // namespace

std::string first_slurm_host(const std::string & node_list, const std::string & variable) {
    const size_t bracket = node_list.find('[');
    const size_t comma   = node_list.find(',');
    if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) {
        return node_list.substr(0, comma);
    }
    const size_t close = node_list.find(']', bracket);
    if (close == std::string::npos) {
        fail(variable, "'" + node_list + "' has an unclosed '['");
    }
    const std::string ranges = node_list.substr(bracket + 1, close - bracket - 1);
    const std::string suffix = node_list.substr(close + 1, node_list.find(',', close) - close - 1);  // "n[1-2]-ib": "-ib"
    return node_list.substr(0, bracket) + ranges.substr(0, ranges.find_first_of("-,")) + suffix;
}

WorldEnv read_world_env(const EnvLookup & lookup) {
    WorldEnv   env;
    const auto max_int = static_cast<long>(std::numeric_limits<int>::max());
    if (const auto world = lookup("WORLD_SIZE")) {
        env.size     = integer("WORLD_SIZE", *world, 1, max_int);
        const auto r = lookup("RANK");
        if (!r) {
            fail("RANK", "not set, but WORLD_SIZE is (" + *world + "): every process needs its rank");
        }
        env.rank       = integer("RANK", *r, 0, env.size - 1);
        env.local_rank = integer("LOCAL_RANK", lookup("LOCAL_RANK").value_or(*r), 0, max_int);
        env.local_size = integer("LOCAL_WORLD_SIZE", lookup("LOCAL_WORLD_SIZE").value_or(*world), 1, max_int);
        env.launcher   = lookup("TORCHELASTIC_RUN_ID") ? "torchrun" : "env";
    } else if (const auto tasks = lookup("SLURM_STEP_NUM_TASKS"); tasks && lookup("SLURM_PROCID")) {
        // srun's tasks (a batch script itself has SLURM_PROCID 0 and SLURM_NTASKS, but is one process).
        env.size       = integer("SLURM_STEP_NUM_TASKS", *tasks, 1, max_int);
        env.rank       = integer("SLURM_PROCID", *lookup("SLURM_PROCID"), 0, env.size - 1);
        env.local_rank = integer("SLURM_LOCALID", lookup("SLURM_LOCALID").value_or("0"), 0, max_int);
        if (const auto per_node = lookup("SLURM_STEP_TASKS_PER_NODE")) {
            env.local_size = slurm_tasks_on(*per_node, integer("SLURM_NODEID", lookup("SLURM_NODEID").value_or("0"), 0, max_int));
        }
        env.launcher = "slurm";
        if (!lookup("MASTER_ADDR") && env.size > 1) {
            const std::string variable = lookup("SLURM_STEP_NODELIST") ? "SLURM_STEP_NODELIST" : "SLURM_JOB_NODELIST";
            const auto        nodes    = lookup(variable);
            if (!nodes) {
                fail("MASTER_ADDR", "not set, and no SLURM_STEP_NODELIST or SLURM_JOB_NODELIST to take the first node from");
            }
            env.master_addr = first_slurm_host(*nodes, variable);
        }
    }
    if (env.size == 1) {
        return WorldEnv{};
    }
    env.master_addr = lookup("MASTER_ADDR").value_or(env.master_addr);
    env.master_port = integer("MASTER_PORT", lookup("MASTER_PORT").value_or("29500"), 1, 65535);
    env.agent_store = lookup("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    env.restart     = lookup("TORCHELASTIC_RESTART_COUNT").value_or("0");
    return env;
}

WorldEnv read_world_env() {
    return read_world_env([](const std::string & name) -> std::optional<std::string> {
        const char * value = std::getenv(name.c_str());
        return value ? std::optional<std::string>(value) : std::nullopt;
    });
}

}  // namespace cgm
