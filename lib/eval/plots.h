#pragma once
// PNG plots drawn by gnuplot from CSV files the programs write anyway, so the CSV stays the
// source of truth and a plot can be restyled without rerunning anything.
#include <cstddef>
#include <string>

namespace cgm {

// metrics.csv (step,epoch,train_loss,val_loss,val_accuracy,lr) -> loss and accuracy against step.
// Returns false (and logs a warning) when gnuplot is missing or fails; the CSV is unaffected.
bool plot_training_curves(const std::string & csv_path, const std::string & png_path);

// Clustered bars from a CSV with a header: one group per row (labelled by column 1), one bar per
// column in [first_column, first_column + columns) (1-based, named by the header), y in [0, 1].
bool plot_grouped_bars(const std::string & csv_path, const std::string & png_path, const std::string & title,
                       const std::string & ylabel, size_t first_column, size_t columns);

// A heat map of a count table (a CSV with a header row and a header column), rows top to bottom,
// every cell labelled with its count.
bool plot_count_heatmap(const std::string & csv_path, const std::string & png_path, const std::string & xlabel,
                        const std::string & ylabel);

// Runs a gnuplot script that writes `png_path` (set as the output), atomically.
bool run_gnuplot(const std::string & script, const std::string & png_path);

}  // namespace cgm
