#pragma once
// PNG plots drawn by gnuplot from CSV files the programs write anyway, so the CSV stays the
// source of truth and a plot can be restyled without rerunning anything.
#include <string>

namespace cgm {

// metrics.csv (step,epoch,train_loss,val_loss,val_accuracy,lr) -> loss and accuracy against step.
// Returns false (and logs a warning) when gnuplot is missing or fails; the CSV is unaffected.
bool plot_training_curves(const std::string & csv_path, const std::string & png_path);

// Runs a gnuplot script that writes `png_path` (set as the output), atomically.
bool run_gnuplot(const std::string & script, const std::string & png_path);

}  // namespace cgm
