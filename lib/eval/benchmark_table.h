#pragma once
// The benchmark's results: one row per run (accuracy per domain and overall, macro-F1 for images,
// the scoring pass's speed, peak memory, parameters, routing accuracy for gates), as a Markdown
// table, results.csv and results.png (a group of bars per run: its domains and overall).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cgm {

struct BenchmarkRow {
    std::string                   run;
    std::string                   kind;      // "checkpoint", "lora", "cgm", "xlora", ...
    std::map<std::string, double> domains;   // accuracy per domain (labeled examples)
    std::optional<double>         accuracy;  // overall; none without labels
    std::optional<double>         macro_f1;  // images
    // Teacher-forced scoring only: the rank accuracy of the same model, since copying the decoder
    // input scores well teacher-forced (see README: where behaviour differs from the seed).
    std::optional<double> rank_accuracy;
    double                examples_per_second = 0;  // the scoring pass alone
    int64_t               peak_memory_bytes   = 0;  // resident, while loading and scoring this run
    int64_t               trainable           = 0;
    int64_t               total               = 0;
    std::optional<double> routing_accuracy;  // gates: own expert on top
};

// The domains of all rows, in name order.
std::vector<std::string> benchmark_domains(const std::vector<BenchmarkRow> & rows);

std::string benchmark_markdown(const std::vector<BenchmarkRow> & rows);

// results.csv: run,kind,<domain>...,overall,macro_f1,rank_accuracy,examples_per_second,
// peak_memory_mib,trainable_params,total_params,routing_accuracy (empty where not measured); then
// results.png beside it, drawn from it.
void write_benchmark_results(const std::string & dir, const std::vector<BenchmarkRow> & rows);

}  // namespace cgm
