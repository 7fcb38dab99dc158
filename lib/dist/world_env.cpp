#include "dist/world_env.h"

#include "core/error.h"

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

// Slurm's tasks of this node: SLURM_STEP_TASKS_PER_NODE is "2(x3),1" (per node, in node order).
std::optional<int> slurm_tasks_here(const EnvLookup & lookup) {
    const auto per_node = lookup("SLURM_STEP_TASKS_PER_NODE");
    if (!per_node || per_node->empty()) {
        return std::nullopt;
    }
    const std::string first = per_node->substr(0, per_node->find_first_of("(,"));
    return integer("SLURM_STEP_TASKS_PER_NODE", first, 1, std::numeric_limits<int>::max());
}

}  // namespace

std::string first_slurm_host(const std::string & node_list) {
    const size_t bracket = node_list.find('[');
    const size_t comma   = node_list.find(',');
    if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) {
        return node_list.substr(0, comma);
    }
    const size_t close = node_list.find(']', bracket);
    if (close == std::string::npos) {
        fail("SLURM_JOB_NODELIST", "'" + node_list + "' has an unclosed '['");
    }
    const std::string ranges = node_list.substr(bracket + 1, close - bracket - 1);
    return node_list.substr(0, bracket) + ranges.substr(0, ranges.find_first_of("-,"));
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
    } else if (const auto procid = lookup("SLURM_PROCID")) {
        const std::string tasks_name = lookup("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
        env.size       = integer(tasks_name, lookup(tasks_name).value_or("1"), 1, max_int);
        env.rank       = integer("SLURM_PROCID", *procid, 0, env.size - 1);
        env.local_rank = integer("SLURM_LOCALID", lookup("SLURM_LOCALID").value_or("0"), 0, max_int);
        env.local_size = slurm_tasks_here(lookup).value_or(1);
        env.launcher   = "slurm";
        if (!lookup("MASTER_ADDR") && env.size > 1) {
            const auto nodes = lookup("SLURM_STEP_NODELIST") ? lookup("SLURM_STEP_NODELIST") : lookup("SLURM_JOB_NODELIST");
            if (!nodes) {
                fail("MASTER_ADDR", "not set, and no SLURM_JOB_NODELIST to take the first node from");
            }
            env.master_addr = first_slurm_host(*nodes);
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
