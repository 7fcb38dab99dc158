#pragma once
// Where this process stands among the processes of one run, read from the environment the way
// every PyTorch program reads it: torchrun (and scripts/launch) set RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; for the tasks of Slurm's srun, SLURM_PROCID,
// SLURM_STEP_NUM_TASKS, SLURM_LOCALID and SLURM_STEP_TASKS_PER_NODE (at SLURM_NODEID) stand for
// them, and MASTER_ADDR defaults to the step's first node.
#include <functional>
#include <optional>
#include <string>

namespace cgm {

struct WorldEnv {
    int         rank             = 0;
    int         size             = 1;  // processes in the run (1: no other process)
    int         local_rank       = 0;  // on this machine: picks the GPU
    int         local_size       = 1;  // processes on this machine: share its cores
    std::string master_addr      = "127.0.0.1";
    int         master_port      = 29500;
    bool        agent_store      = false;  // torchrun's agent hosts the store: every rank is a client
    std::string restart          = "0";    // torchrun's restart count: keeps attempts' keys apart
    std::string launcher;                  // "torchrun", "slurm", "env"; "" when alone
};

using EnvLookup = std::function<std::optional<std::string>(const std::string &)>;

// An Error names the variable that is malformed or missing (RANK without WORLD_SIZE, a rank
// outside the world, a port outside 1..65535).
WorldEnv read_world_env(const EnvLookup & lookup);
WorldEnv read_world_env();  // from this process's environment

// The first host of a Slurm node list: "gpu[07-09,12],cpu1" -> "gpu07"; an Error names `variable`.
std::string first_slurm_host(const std::string & node_list, const std::string & variable = "SLURM_JOB_NODELIST");

}  // namespace cgm
