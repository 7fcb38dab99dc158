#include "eval/plots.h"

#include "io/atomic_file.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace cgm {

bool run_gnuplot(const std::string & script, const std::string & png_path) {
    const std::string tmp  = temporary_name(png_path);
    FILE *            pipe = ::popen("gnuplot 2>/dev/null", "w");
    if (pipe == nullptr) {
        spdlog::warn("{}: not drawn (cannot start gnuplot)", png_path);
        return false;
    }
    const std::string full = "set terminal pngcairo size 1000,420 font ',10'\nset output '" + tmp + "'\n" + script;
    std::fwrite(full.data(), 1, full.size(), pipe);
    const int status = ::pclose(pipe);
    std::error_code ec;
    if (status != 0 || !fs::exists(tmp, ec) || fs::file_size(tmp, ec) == 0) {
        fs::remove(tmp, ec);
        spdlog::warn("{}: not drawn (gnuplot missing or failed; install gnuplot-nox)", png_path);
        return false;
    }
    fs::rename(tmp, png_path, ec);
    return !ec;
}

bool plot_training_curves(const std::string & csv_path, const std::string & png_path) {
    const std::string script =
        "set datafile separator ','\n"
        "set key autotitle columnhead\n"
        "set multiplot layout 1,2\n"
        "set title 'loss'\nset xlabel 'step'\nset grid\n"
        "plot '" + csv_path + "' using 1:3 with linespoints title 'train loss', '' using 1:4 with linespoints title 'val loss'\n"
        "set title 'validation accuracy'\nset yrange [0:1]\n"
        "plot '" + csv_path + "' using 1:5 with linespoints title 'val accuracy'\n"
        "unset multiplot\n";
    return run_gnuplot(script, png_path);
}

bool plot_grouped_bars(const std::string & csv_path, const std::string & png_path, const std::string & title,
                       const std::string & ylabel, size_t first_column, size_t columns) {
    std::string script = "set datafile separator ','\nset style data histograms\nset style histogram clustered\n"
                         "set style fill solid 0.8 border -1\nset key outside right autotitle columnhead\nset yrange [0:1]\n"
                         "set title '" + title + "'\nset ylabel '" + ylabel + "'\nset grid y\nset xtics rotate by -30\nplot ";
    for (size_t c = 0; c < columns; ++c) {
        script += (c ? ", '" : "'") + csv_path + "' using " + std::to_string(first_column + c) + ":xtic(1)";
    }
    return run_gnuplot(script + "\n", png_path);
}

bool plot_count_heatmap(const std::string & csv_path, const std::string & png_path, const std::string & xlabel,
                        const std::string & ylabel) {
    const std::string script = "set datafile separator ','\n"
                               "set size ratio -1\nset xlabel '" + xlabel + "'\nset ylabel '" + ylabel + "'\n"
                               "set yrange [] reverse\nset xtics rotate by -30\nunset key\n"
                               "set palette defined (0 'white', 1 '#54278f')\n"
                               "plot '" + csv_path + "' matrix rowheaders columnheaders using 1:2:3 with image, "
                               "'' matrix rowheaders columnheaders using 1:2:(sprintf('%g', $3)) with labels\n";
    return run_gnuplot(script, png_path);
}

}  // namespace cgm
