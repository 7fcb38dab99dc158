#include "eval/benchmark_table.h"

#include "core/numbers.h"
#include "eval/plots.h"
#include "eval/report.h"
#include "io/csv.h"

#include <cstdio>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace cgm {
namespace {

std::string fixed_or(const std::optional<double> & value, int digits, const std::string & none) {
    return value ? fixed(*value, digits) : none;
}

// 1234567 -> "1.23M": parameter counts a reader compares at a glance.
std::string short_count(int64_t n) {
    const auto v = static_cast<double>(n);
    return v >= 1e9 ? fixed(v / 1e9, 2) + "G" : v >= 1e6 ? fixed(v / 1e6, 2) + "M" : v >= 1e3 ? fixed(v / 1e3, 1) + "K" : std::to_string(n);
}

double mebibytes(int64_t bytes) {
    return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

bool copy_artifact(const BenchmarkRow & r) {
    return r.accuracy && r.rank_accuracy && looks_like_copy_artifact(*r.accuracy, *r.rank_accuracy);
}

}  // namespace

std::vector<std::string> benchmark_domains(const std::vector<BenchmarkRow> & rows) {
    std::set<std::string> names;
    for (const auto & r : rows) {
        for (const auto & [domain, accuracy] : r.domains) {
            names.insert(domain);
        }
    }
    return { names.begin(), names.end() };
}

std::string benchmark_markdown(const std::vector<BenchmarkRow> & rows) {
    const std::vector<std::string> domains   = benchmark_domains(rows);
    bool                           has_f1    = false, has_rank = false, has_routing = false;
    for (const auto & r : rows) {
        has_f1 |= r.macro_f1.has_value();
        has_rank |= r.rank_accuracy.has_value();
        has_routing |= r.routing_accuracy.has_value();
    }
    std::string out = "| run | kind |";
    for (const auto & d : domains) {
        out += " " + d + " |";
    }
    out += std::string(" overall |") + (has_f1 ? " macro-F1 |" : "") + (has_rank ? " rank acc. |" : "") +
           " examples/s | peak MiB | trainable | total |" + (has_routing ? " routing |" : "") + "\n|---|---|";
    const size_t columns = domains.size() + 7 + has_f1 + has_rank + has_routing;  // run, kind, overall, speed, memory, 2 counts
    for (size_t c = 2; c < columns; ++c) {
        out += "--:|";
    }
    out += "\n";
    for (const auto & r : rows) {
        out += "| " + r.run + " | " + r.kind + " |";
        for (const auto & d : domains) {
            const auto it = r.domains.find(d);
            out += " " + (it == r.domains.end() ? std::string("-") : fixed(it->second, 4)) + " |";
        }
        out += " " + fixed_or(r.accuracy, 4, "-") + (copy_artifact(r) ? " (copy?)" : "") + " |";
        if (has_f1) {
            out += " " + fixed_or(r.macro_f1, 4, "-") + " |";
        }
        if (has_rank) {
            out += " " + fixed_or(r.rank_accuracy, 4, "-") + " |";
        }
        out += " " + fixed(r.examples_per_second, 1) + " | " + fixed(mebibytes(r.peak_memory_bytes), 0) + " | " +
               short_count(r.trainable) + " | " + short_count(r.total) + " |";
        if (has_routing) {
            out += " " + fixed_or(r.routing_accuracy, 4, "-") + " |";
        }
        out += "\n";
    }
    for (const auto & r : rows) {
        if (copy_artifact(r)) {
            out += "\n(copy?) " + r.run + ": teacher-forced accuracy is " + fixed(*r.accuracy - *r.rank_accuracy, 2) +
                   " above rank accuracy: a model that copies its decoder input scores well teacher-forced.\n";
        }
    }
    return out;
}

void write_benchmark_results(const std::string & dir, const std::vector<BenchmarkRow> & rows) {
    const std::vector<std::string> domains = benchmark_domains(rows);
    CsvRow                         header  = { "run", "kind" };
    header.insert(header.end(), domains.begin(), domains.end());
    for (const char * name : { "overall", "macro_f1", "rank_accuracy", "examples_per_second", "peak_memory_mib",
                               "trainable_params", "total_params", "routing_accuracy" }) {
        header.emplace_back(name);
    }
    std::vector<CsvRow> csv;
    for (const auto & r : rows) {
        CsvRow row = { r.run, r.kind };
        for (const auto & d : domains) {
            const auto it = r.domains.find(d);
            row.push_back(it == r.domains.end() ? "" : fixed(it->second, 6));
        }
        row.insert(row.end(), { fixed_or(r.accuracy, 6, ""), fixed_or(r.macro_f1, 6, ""), fixed_or(r.rank_accuracy, 6, ""),
                                fixed(r.examples_per_second, 3), fixed(mebibytes(r.peak_memory_bytes), 1),
                                std::to_string(r.trainable), std::to_string(r.total), fixed_or(r.routing_accuracy, 6, "") });
        csv.push_back(row);
    }
    const std::string csv_path = (fs::path(dir) / "results.csv").string();
    write_csv(csv_path, header, csv);

    // A group of bars per run: its accuracy on each domain, then overall.
    plot_grouped_bars(csv_path, (fs::path(dir) / "results.png").string(), "accuracy per run and domain", "accuracy", 3,
                      domains.size() + 1);
}

}  // namespace cgm
