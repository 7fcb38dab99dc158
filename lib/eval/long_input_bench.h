#pragma once
// The long-input benchmark: peak resident memory and time against source length, for several T5
// shapes, attention modes (dense, query chunks, top-k) and tasks, each measurement in a process of
// its own (long_input_case.h) under a memory limit; rows measured before (the peer's, from
// scripts/long-input-peer, or another run's) can be read in beside these. Writes long-inputs.csv, long-inputs.md and long-inputs.png.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct LongInputPlan {
    std::string              program;  // the benchmark executable, started once per measurement
    std::vector<std::string> configs, modes, tasks;
    std::vector<int64_t>     lengths;
    int64_t                  limit_bytes = 0;  // a measurement is stopped when its RSS passes this
    int                      threads     = 0;  // passed on to each measurement
    double                   gemm_peak_gflops = 0;  // this machine's f32 GEMM peak, measured in the same run
};

struct LongInputRow {
    std::string            implementation;  // "cgm" or the peer's ("transformers")
    std::string            shape;           // the config file's stem
    std::string            mode;            // mode_title()
    std::string            task;
    int64_t                length = 0;
    std::string            status;          // ok, over-limit, out-of-memory, killed, error, skipped
    std::optional<double>  seconds;
    std::optional<int64_t> peak_rss;
    int64_t                reps = 0;
    std::optional<double>  flops;           // model FLOPs of one repetition (ours)
    std::optional<double>  peak_fraction;   // GFLOP/s reached over the run's f32 GEMM peak (ours)
};

// Every shape x task x mode, lengths in increasing order; once a length does not fit, the longer
// ones of that series are skipped. Logs a line per measurement.
std::vector<LongInputRow> run_long_input_plan(const LongInputPlan & plan);

// Rows of a CSV in long-inputs.csv's columns (the peer's script writes them); an Error names the
// file and the line.
std::vector<LongInputRow> read_long_input_rows(const std::string & csv_path);

// long-inputs.csv, long-inputs.md (a table per shape and task) and long-inputs.png (memory against
// length) in `dir`. Returns the markdown.
std::string write_long_input_report(const std::string & dir, const std::vector<LongInputRow> & rows);

}  // namespace cgm
