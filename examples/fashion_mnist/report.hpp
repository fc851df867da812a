#pragma once
// The report folder: CSVs of everything the terminal shows, a gnuplot script, and the PNG
// plots that gnuplot renders from them (gnuplot is looked up on PATH at run time; without
// it the CSVs and the script are still written).

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "arms.hpp"

namespace fashion_mnist {

// One model's numbers for one epoch.
struct ModelEpoch {
  double test_accuracy = 0;   // percent
  double test_loss = 0;
  double train_loss = 0;      // mean over the epoch's steps
  double train_seconds = 0;   // training steps only
  double norm_seconds = 0;    // of which: normnorm forward + backward
  double eval_seconds = 0;    // the test-set evaluation
};

struct EpochRecord {
  int epoch = 0;
  int steps = 0;
  double wall_seconds = 0;     // the epoch's training, all arms
  double learning_rate = 0;    // at the epoch's last step
  std::vector<ModelEpoch> arms;  // in the order of the arms
};

// What the plots' titles say about the run.
struct RunLabel {
  int seed = 0;
  int probe_layer = 2;
  double qq_limit = 4.2;  // both axes of the Q-Q plot span [-qq_limit, qq_limit]
};

// Throws (naming the file) when it cannot be opened.
inline std::ofstream open_for_writing(const std::filesystem::path& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return out;
}

// One column per (quantity, arm), quantity-major: with the default arms the header is
// the one the demo always wrote, plus learning_rate at the end.
inline void write_accuracy_csv(const std::filesystem::path& path, const std::vector<Arm>& arms,
                               const std::vector<EpochRecord>& records) {
  struct Quantity {
    const char* suffix;
    double ModelEpoch::*value;
  };
  const Quantity quantities[] = {{"test_accuracy", &ModelEpoch::test_accuracy},
                                 {"test_loss", &ModelEpoch::test_loss},
                                 {"train_loss", &ModelEpoch::train_loss},
                                 {"train_seconds", &ModelEpoch::train_seconds},
                                 {"normalization_seconds", &ModelEpoch::norm_seconds}};
  std::ofstream out = open_for_writing(path);
  out << "epoch";
  for (const Quantity& q : quantities)
    for (const Arm& arm : arms) out << ',' << arm.key << '_' << q.suffix;
  out << ",learning_rate\n";
  for (const EpochRecord& r : records) {
    out << r.epoch;
    for (const Quantity& q : quantities)
      for (const ModelEpoch& e : r.arms) out << ',' << e.*q.value;
    out << ',' << r.learning_rate << '\n';
  }
}

// Columns: bin centre, density of each arm, and the standard normal density.
inline void write_histogram_csv(const std::filesystem::path& path, double low, double high,
                                const std::vector<Arm>& arms,
                                const std::vector<std::vector<double>>& densities) {
  std::ofstream out = open_for_writing(path);
  out << "x";
  for (const Arm& arm : arms) out << ',' << arm.key << "_density";
  out << ",standard_normal_density\n";
  const std::size_t bins = densities.front().size();
  const double width = (high - low) / static_cast<double>(bins);
  for (std::size_t i = 0; i < bins; ++i) {
    const double x = low + (static_cast<double>(i) + 0.5) * width;
    out << x;
    for (const auto& density : densities) out << ',' << density[i];
    out << ',' << std::exp(-0.5 * x * x) / std::sqrt(2 * 3.14159265358979323846) << '\n';
  }
}

// Columns: the standard normal quantile z, and each arm's sample quantile at Phi(z).
inline void write_qq_csv(const std::filesystem::path& path, const std::vector<double>& z, const std::vector<Arm>& arms,
                         const std::vector<std::vector<double>>& quantiles) {
  std::ofstream out = open_for_writing(path);
  out << "normal_quantile";
  for (const Arm& arm : arms) out << ',' << arm.key << "_quantile";
  out << '\n';
  for (std::size_t i = 0; i < z.size(); ++i) {
    out << z[i];
    for (const auto& q : quantiles) out << ',' << q[i];
    out << '\n';
  }
}

// The gnuplot script that draws the three PNGs from the CSVs; it is kept in the report
// folder, so `cd REPORT && gnuplot plots.gp` redraws them. Column 2 + m of each CSV is
// arm m; batch norm's boxes and points go first so the others are drawn over them.
inline std::string gnuplot_script(const RunLabel& label, const std::vector<Arm>& arms, int epochs) {
  std::vector<std::size_t> draw_order;
  for (std::size_t m = 0; m < arms.size(); ++m)
    if (!arms[m].has_transform()) draw_order.push_back(m);
  for (std::size_t m = 0; m < arms.size(); ++m)
    if (arms[m].has_transform()) draw_order.push_back(m);
  // 'file' using 1:COLUMN STYLE lc rgb 'COLOUR' title 'TITLE', one arm per line.
  const auto plot_arms = [&](const std::string& file, const std::vector<std::size_t>& order, const std::string& style) {
    std::ostringstream plot;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::size_t m = order[i];
      plot << (i == 0 ? "plot '" + file + "'" : "     ''") << " using 1:" << 2 + m << ' ' << style << " lc rgb '"
           << arms[m].color << "' title '" << arms[m].plot_title << "', \\\n";
    }
    return plot.str();
  };
  std::vector<std::size_t> listed_order(arms.size());
  for (std::size_t m = 0; m < arms.size(); ++m) listed_order[m] = m;
  const std::string normal_column = std::to_string(2 + arms.size());

  std::ostringstream gp;
  gp << "# Redraw with: gnuplot plots.gp (in this folder)\n"
        "set terminal pngcairo size 800,500 font 'DejaVu Sans,11'\n"
        "set datafile separator ','\n"
        "set grid\n"
        "set key bottom right\n\n"
        "set output 'accuracy.png'\n"
        "set title 'Fashion-MNIST test accuracy, MLP 784-784-784-10, seed "
     << label.seed
     << "'\n"
        "set xlabel 'epoch'\n"
        "set ylabel 'test accuracy (%)'\n";
  if (epochs <= 25) gp << "set xtics 1\nset xrange [0.5:" << epochs << ".5]\n";
  std::string accuracy_plot = plot_arms("accuracy.csv", listed_order, "with linespoints lw 2 pt 7");
  accuracy_plot.resize(accuracy_plot.size() - 4);  // the last line ends the plot command
  gp << accuracy_plot << "\n\n"
     << "set output 'feature_histogram.png'\n"
        "set title 'Hidden layer "
     << label.probe_layer
     << ": normalized features on the test set (each standardized, pooled)'\n"
        "set xlabel 'standardized feature value'\n"
        "set ylabel 'density'\n"
        "set key top left box opaque\n"
        "set xtics auto\n"
        "set xrange [-5:5]\n"
        "set yrange [0:*]\n"
        "set offsets 0, 0, graph 0.05, 0\n"
        "set style fill transparent solid 0.35 noborder\n"
     << plot_arms("feature_histogram.csv", draw_order, "with boxes")
     << "     '' using 1:" << normal_column
     << " with lines lw 2 dt 2 lc rgb 'black' title 'standard normal'\n\n"
        "set terminal pngcairo size 640,600 font 'DejaVu Sans,11'\n"
        "set output 'feature_qq.png'\n"
        "set title 'Hidden layer "
     << label.probe_layer
     << ": normal Q-Q plot of the standardized features'\n"
        "set xlabel 'standard normal quantile'\n"
        "set ylabel 'sample quantile'\n"
        "set key top left box opaque\n"
        "set xrange [-"
     << label.qq_limit << ":" << label.qq_limit << "]\n"
        "set yrange [-"
     << label.qq_limit << ":" << label.qq_limit << "]\n"
        "set size ratio 1\n"
        "set offsets 0, 0, 0, 0\n"
     << plot_arms("feature_qq.csv", draw_order, "with points pt 7 ps 0.6")
     << "     x with lines lw 1.5 dt 2 lc rgb 'black' title 'y = x (normal)'\n";
  return gp.str();
}

// The first executable `program` on PATH, or "".
inline std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return candidate.string();
  }
  return "";
}

// Runs `gnuplot plots.gp` inside `dir`; returns a sentence saying what happened.
inline std::string render_plots(const std::filesystem::path& dir) {
  const std::string gnuplot = find_on_path("gnuplot");
  if (gnuplot.empty())
    return "gnuplot not found on PATH: wrote the CSVs and plots.gp, but no PNGs "
           "(install it with: apt-get install gnuplot-nox, then run: cd " + dir.string() + " && gnuplot plots.gp)";
  const pid_t child = fork();
  if (child < 0) return "could not start gnuplot (fork failed): no PNGs";
  if (child == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    execl(gnuplot.c_str(), gnuplot.c_str(), "plots.gp", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return gnuplot + " failed (see its messages above): the PNGs may be missing or incomplete";
  return "plots rendered with " + gnuplot;
}

}  // namespace fashion_mnist
