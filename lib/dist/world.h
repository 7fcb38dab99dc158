#pragma once
// The processes of one run (data parallel): LibTorch's c10d process groups over a TCPStore
// rendezvous at MASTER_ADDR:MASTER_PORT (Gloo for CPU tensors; NCCL for CUDA tensors, in CUDA
// builds) and the few collectives the programs need. Alone (world size 1) every collective returns
// at once, untouched.
//
// Every rank calls the same collectives in the same order. A collective that fails (a rank died,
// or did not answer within the timeout) throws an Error that names the rank: the survivors ask
// each other through the store which of them is still there.
#include "dist/world_env.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cgm::dist {

// Joins the run `env` describes (nothing when env.size is 1); collectives then wait at most
// `timeout` for the other ranks. A CUDA `device` also sets up NCCL for the tensors that live there.
void init(const WorldEnv & env, std::chrono::milliseconds timeout, c10::Device device);

int  rank();
int  size();
bool is_main();  // rank 0: the one that writes
const WorldEnv & env();

// An all-reduce (sum) under way; wait() throws the collective's failure as above.
class PendingSum {
  public:
    PendingSum();
    ~PendingSum();
    PendingSum(PendingSum &&) noexcept;
    PendingSum & operator=(PendingSum &&) noexcept;
    void wait();

  private:
    friend PendingSum sum_async(at::Tensor tensor);
    struct Work;
    std::unique_ptr<Work> work_;
};

PendingSum sum_async(at::Tensor tensor);  // in place, when waited for
void       sum(at::Tensor & tensor);      // in place
void       broadcast(at::Tensor & tensor);  // rank 0's values, in place

// Every rank's bytes, in rank order.
std::vector<std::string> all_gather(const std::string & mine);

// fn's result, computed on rank 0 alone and given to every rank; when fn throws on rank 0, every
// rank throws an Error with its message.
std::string from_main(const std::function<std::string()> & fn);

void barrier();

// Leaves the run: the process groups and the store go, before the process's static objects do.
void finish();

}  // namespace cgm::dist
