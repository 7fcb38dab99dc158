#pragma once
// One measurement of the long-input benchmark: a random T5 of a given shape, batch 1, a source of
// `length` tokens and 8 target tokens, run as a teacher-forced forward pass with loss or as one
// LoRA training step (r 8 on q,v; forward, backward, AdamW). Run in a process of its own, so its
// peak resident memory is its own.
#include "models/t5.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cgm {

struct LongInputCase {
    std::string config;  // T5 config.json
    std::string mode;    // "dense", "chunk:C", "chunk:C+topk:K" (see run_options_of_mode)
    std::string task;    // "forward" or "lora-step"
    int64_t     length = 0;

    nlohmann::json       to_json() const;
    static LongInputCase from_json(const nlohmann::json & j);
};

struct LongInputTiming {
    double  seconds  = 0;  // median over the repetitions
    int64_t reps     = 0;
    int64_t peak_rss = 0;  // the process's VmHWM at the end, bytes
    double  flops    = 0;  // model FLOPs of one repetition
};

// "dense" -> {}; "chunk:256" -> q_chunk 256; "chunk:256+topk:64" -> q_chunk 256, attn_topk 64. An
// Error names the mode when it is none of these.
T5RunOptions run_options_of_mode(const std::string & mode);
// "dense", "q-chunk 256", "q-chunk 256, top-k 64": how tables and plots name a mode.
std::string mode_title(const std::string & mode);

// After one untimed repetition at 64 tokens, repeats until 3 repetitions or 20 s.
LongInputTiming measure_long_input(const LongInputCase & c);

}  // namespace cgm
