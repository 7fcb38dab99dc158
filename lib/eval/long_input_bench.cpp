#include "eval/long_input_bench.h"

#include "core/error.h"
#include "core/numbers.h"
#include "eval/long_input_case.h"
#include "eval/plots.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "perf/watched_child.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace cgm {
namespace {

const CsvRow kHeader = { "implementation", "shape", "mode",         "task",         "source_tokens", "status",
                         "seconds",        "peak_rss_bytes", "reps", "model_gflops", "f32_peak_fraction" };

std::string last_line(const std::string & text) {
    std::istringstream in(text);
    std::string        line, last;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            last = line;
        }
    }
    return last;
}

// One measurement in its own process, under the plan's memory limit.
LongInputRow measure(const LongInputPlan & plan, const LongInputCase & c, const std::string & shape) {
    LongInputRow row{ "cgm", shape, mode_title(c.mode), c.task, c.length, "ok", {}, {}, 0, {}, {} };
    const WatchedOutcome out = run_watched({ plan.program, "--long-input-case", c.to_json().dump(), "--threads",
                                             std::to_string(plan.threads), "--log-level", "warn" },
                                           plan.limit_bytes);
    const std::string    error = last_line(out.err);
    if (out.over_limit) {
        row.status   = "over-limit";
        row.peak_rss = out.max_rss;
    } else if (out.exit_code == 0) {
        const nlohmann::json j = nlohmann::json::parse(last_line(out.out));
        row.seconds            = j.at("seconds").get<double>();
        row.peak_rss           = j.at("peak_rss_bytes").get<int64_t>();
        row.reps               = j.at("reps").get<int64_t>();
        row.flops              = j.at("flops").get<double>();
        if (plan.gemm_peak_gflops > 0) {
            row.peak_fraction = *row.flops / 1e9 / *row.seconds / plan.gemm_peak_gflops;
        }
    } else if (error.find("can't allocate memory") != std::string::npos || error.find("out of memory") != std::string::npos) {
        row.status   = "out-of-memory";
        row.peak_rss = out.max_rss;
    } else {
        row.status = out.signal != 0 ? "killed" : "error";
        spdlog::warn("{} {} {} at {} tokens: {}", shape, row.mode, c.task, c.length,
                     out.signal != 0 ? "ended by signal " + std::to_string(out.signal) : error);
    }
    return row;
}

std::string gigabytes(int64_t bytes) {
    return fixed(static_cast<double>(bytes) / 1e9, 2) + " GB";
}

std::string optional_field(const std::optional<double> & v, int digits) {
    return v ? fixed(*v, digits) : std::string();
}

CsvRow csv_row(const LongInputRow & r) {
    return { r.implementation, r.shape, r.mode, r.task, std::to_string(r.length), r.status,
             optional_field(r.seconds, 4), r.peak_rss ? std::to_string(*r.peak_rss) : std::string(), std::to_string(r.reps),
             optional_field(r.flops ? std::optional<double>(*r.flops / 1e9) : std::nullopt, 3), optional_field(r.peak_fraction, 4) };
}

// "0.41 GB, 1.23 s (12% of f32 peak)", or why there is no figure.
std::string cell(const LongInputRow & r) {
    if (r.status == "over-limit") {
        return "over the limit (" + gigabytes(r.peak_rss.value_or(0)) + " seen)";
    }
    if (r.status != "ok") {
        return r.status;
    }
    std::string text = gigabytes(r.peak_rss.value_or(0)) + ", " + fixed(*r.seconds, 3) + " s";
    if (r.peak_fraction) {
        text += " (" + fixed(100.0 * *r.peak_fraction, 1) + "% of f32 peak)";
    }
    return text;
}

std::string series_name(const LongInputRow & r) {
    return r.implementation + " " + r.mode;
}

// Memory (GB) against source tokens, log-log: a row of panels per task, a panel per shape, a line
// per series.
void plot_memory(const std::string & dir, const std::vector<LongInputRow> & rows) {
    std::vector<std::string> shapes, tasks;
    for (const LongInputRow & r : rows) {
        for (auto [list, value] : { std::pair{ &shapes, &r.shape }, std::pair{ &tasks, &r.task } }) {
            if (std::find(list->begin(), list->end(), *value) == list->end()) {
                list->push_back(*value);
            }
        }
    }
    std::vector<std::pair<std::string, std::string>> panels;  // (shape, task), row by row
    for (const std::string & task : tasks) {
        for (const std::string & shape : shapes) {
            panels.emplace_back(shape, task);
        }
    }
    const std::string data = (fs::path(dir) / "long-inputs-plot.dat").string();
    std::string       blocks, script = "set terminal pngcairo size " + std::to_string(520 * shapes.size()) + "," +
                                         std::to_string(400 * tasks.size()) + " font ',10'\n"
                                         "set multiplot layout " + std::to_string(tasks.size()) + "," + std::to_string(shapes.size()) + "\n"
                                         "set logscale xy 2\nset grid\nset key top left\n"
                                         "set xlabel 'source tokens'\nset ylabel 'peak RSS (GB)'\n";
    int block = 0;
    for (const auto & [shape, task] : panels) {
        std::vector<std::string> series;
        for (const LongInputRow & r : rows) {
            if (r.shape == shape && r.task == task && std::find(series.begin(), series.end(), series_name(r)) == series.end()) {
                series.push_back(series_name(r));
            }
        }
        std::string plots;
        for (const std::string & name : series) {
            std::string points;
            for (const LongInputRow & r : rows) {
                if (r.shape == shape && r.task == task && series_name(r) == name && r.status == "ok") {
                    points += std::to_string(r.length) + " " + fixed(static_cast<double>(*r.peak_rss) / 1e9, 4) + "\n";
                }
            }
            if (points.empty()) {
                continue;
            }
            blocks += "# " + name + "\n" + points + "\n\n";
            plots += std::string(plots.empty() ? "plot " : ", ") + "'" + data + "' index " + std::to_string(block++) +
                     " using 1:2 with linespoints title '" + name + "'";
        }
        script += "set title '" + shape + ", " + task + " (batch 1)'\n" + plots + "\n";
    }
    write_text_atomic(data, blocks);
    run_gnuplot(script + "unset multiplot\n", (fs::path(dir) / "long-inputs.png").string());
}

}  // namespace

std::vector<LongInputRow> run_long_input_plan(const LongInputPlan & plan) {
    std::vector<LongInputRow> rows;
    std::vector<int64_t>      lengths = plan.lengths;
    std::sort(lengths.begin(), lengths.end());
    for (const std::string & config : plan.configs) {
        const std::string shape = fs::path(config).stem().string();
        for (const std::string & task : plan.tasks) {
            for (const std::string & mode : plan.modes) {
                bool fits = true;
                for (const int64_t length : lengths) {
                    const LongInputCase c = LongInputCase::from_json({ { "config", config }, { "mode", mode }, { "task", task }, { "length", length } });
                    LongInputRow row = fits ? measure(plan, c, shape)
                                            : LongInputRow{ "cgm", shape, mode_title(mode), task, length, "skipped", {}, {}, 0, {}, {} };
                    fits = fits && row.status == "ok";
                    spdlog::info("{} {} {} at {} tokens: {}", shape, row.mode, task, length,
                                 row.status == "ok" ? gigabytes(*row.peak_rss) + ", " + fixed(*row.seconds, 3) + " s" : row.status);
                    rows.push_back(std::move(row));
                }
            }
        }
    }
    return rows;
}

std::vector<LongInputRow> read_long_input_rows(const std::string & csv_path) {
    const std::vector<CsvRow> table = read_csv(csv_path);
    if (table.empty()) {
        fail(csv_path, "is empty: expected a header and rows of the long-input benchmark");
    }
    std::map<std::string, size_t> column;
    for (size_t i = 0; i < table[0].size(); ++i) {
        column[table[0][i]] = i;
    }
    for (const char * name : { "implementation", "shape", "mode", "task", "source_tokens", "status", "seconds", "peak_rss_bytes", "reps" }) {
        if (!column.count(name)) {
            fail(csv_path, std::string("has no column '") + name + "'");
        }
    }
    std::vector<LongInputRow> rows;
    for (size_t line = 1; line < table.size(); ++line) {
        const CsvRow & f     = table[line];
        const auto     field = [&](const char * name) -> const std::string & {
            if (column[name] >= f.size()) {
                fail(csv_path + ":" + std::to_string(line + 1), std::string("has no value for '") + name + "'");
            }
            return f[column[name]];
        };
        const auto number = [&](const char * name) -> std::optional<double> {
            const std::string & text = field(name);
            if (text.empty()) {
                return std::nullopt;
            }
            const std::optional<double> v = parse_number(text);
            if (!v) {
                fail(csv_path + ":" + std::to_string(line + 1), std::string("'") + name + "' is not a number: '" + text + "'");
            }
            return v;
        };
        LongInputRow r;
        r.implementation = field("implementation");
        r.shape          = field("shape");
        r.mode           = field("mode");
        r.task           = field("task");
        r.length         = static_cast<int64_t>(number("source_tokens").value_or(0));
        r.status         = field("status");
        r.seconds        = number("seconds");
        if (const auto peak = number("peak_rss_bytes")) {
            r.peak_rss = static_cast<int64_t>(*peak);
        }
        r.reps = static_cast<int64_t>(number("reps").value_or(0));
        if (column.count("model_gflops")) {
            if (const auto gflops = number("model_gflops")) {
                r.flops = *gflops * 1e9;
            }
        }
        if (column.count("f32_peak_fraction")) {
            r.peak_fraction = number("f32_peak_fraction");
        }
        if (r.status == "ok" && (!r.seconds || !r.peak_rss)) {
            fail(csv_path + ":" + std::to_string(line + 1), "status ok needs seconds and peak_rss_bytes");
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string write_long_input_report(const std::string & dir, const std::vector<LongInputRow> & rows) {
    std::vector<CsvRow> csv;
    for (const LongInputRow & r : rows) {
        csv.push_back(csv_row(r));
    }
    write_csv((fs::path(dir) / "long-inputs.csv").string(), kHeader, csv);

    // A table per (shape, task): a row per length, a column per series.
    std::string md = "Peak resident memory of the whole process and median time per repetition; batch 1, 8 target "
                     "tokens; GFLOP/s as a fraction of the f32 GEMM peak measured in the same run.\n";
    std::vector<std::pair<std::string, std::string>> panels;
    for (const LongInputRow & r : rows) {
        if (std::find(panels.begin(), panels.end(), std::make_pair(r.shape, r.task)) == panels.end()) {
            panels.emplace_back(r.shape, r.task);
        }
    }
    for (const auto & [shape, task] : panels) {
        std::vector<std::string> series;
        std::set<int64_t>        lengths;
        std::map<std::pair<std::string, int64_t>, const LongInputRow *> at;
        for (const LongInputRow & r : rows) {
            if (r.shape != shape || r.task != task) {
                continue;
            }
            if (std::find(series.begin(), series.end(), series_name(r)) == series.end()) {
                series.push_back(series_name(r));
            }
            lengths.insert(r.length);
            at[{ series_name(r), r.length }] = &r;
        }
        md += "\n### " + shape + ", " + task + "\n\n| source tokens |";
        std::string rule = "|---|";
        for (const std::string & s : series) {
            md += " " + s + " |";
            rule += "---|";
        }
        md += "\n" + rule + "\n";
        for (const int64_t length : lengths) {
            md += "| " + std::to_string(length) + " |";
            for (const std::string & s : series) {
                const auto it = at.find({ s, length });
                md += " " + (it == at.end() ? std::string() : cell(*it->second)) + " |";
            }
            md += "\n";
        }
    }
    write_text_atomic((fs::path(dir) / "long-inputs.md").string(), md);
    plot_memory(dir, rows);
    return md;
}

}  // namespace cgm
