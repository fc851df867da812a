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
  double wall_seconds = 0;  // the epoch's training, both models
  ModelEpoch normal_norm, batch_norm;
};

// What the plots' titles say about the run.
struct RunLabel {
  int seed = 0;
  double noise = 0;
  int probe_layer = 2;
  double qq_limit = 4.2;  // both axes of the Q-Q plot span [-qq_limit, qq_limit]
};

// Throws (naming the file) when it cannot be opened.
inline std::ofstream open_for_writing(const std::filesystem::path& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return out;
}

inline void write_accuracy_csv(const std::filesystem::path& path, const std::vector<EpochRecord>& records) {
  std::ofstream out = open_for_writing(path);
  out << "epoch,normality_norm_test_accuracy,batch_norm_test_accuracy,normality_norm_test_loss,batch_norm_test_loss,"
         "normality_norm_train_loss,batch_norm_train_loss,normality_norm_train_seconds,batch_norm_train_seconds,"
         "normality_norm_normalization_seconds,batch_norm_normalization_seconds\n";
  for (const EpochRecord& r : records)
    out << r.epoch << ',' << r.normal_norm.test_accuracy << ',' << r.batch_norm.test_accuracy << ','
        << r.normal_norm.test_loss << ',' << r.batch_norm.test_loss << ',' << r.normal_norm.train_loss << ','
        << r.batch_norm.train_loss << ',' << r.normal_norm.train_seconds << ',' << r.batch_norm.train_seconds << ','
        << r.normal_norm.norm_seconds << ',' << r.batch_norm.norm_seconds << '\n';
}

// Columns: bin centre, density of each model, and the standard normal density.
inline void write_histogram_csv(const std::filesystem::path& path, double low, double high,
                                const std::vector<double>& normal_norm, const std::vector<double>& batch_norm) {
  std::ofstream out = open_for_writing(path);
  out << "x,normality_norm_density,batch_norm_density,standard_normal_density\n";
  const double width = (high - low) / static_cast<double>(normal_norm.size());
  for (std::size_t i = 0; i < normal_norm.size(); ++i) {
    const double x = low + (static_cast<double>(i) + 0.5) * width;
    out << x << ',' << normal_norm[i] << ',' << batch_norm[i] << ',' << std::exp(-0.5 * x * x) / std::sqrt(2 * 3.14159265358979323846)
        << '\n';
  }
}

// Columns: the standard normal quantile z, and each model's sample quantile at Phi(z).
inline void write_qq_csv(const std::filesystem::path& path, const std::vector<double>& z,
                         const std::vector<double>& normal_norm, const std::vector<double>& batch_norm) {
  std::ofstream out = open_for_writing(path);
  out << "normal_quantile,normality_norm_quantile,batch_norm_quantile\n";
  for (std::size_t i = 0; i < z.size(); ++i) out << z[i] << ',' << normal_norm[i] << ',' << batch_norm[i] << '\n';
}

// The gnuplot script that draws the three PNGs from the CSVs; it is kept in the report
// folder, so `cd REPORT && gnuplot plots.gp` redraws them.
inline std::string gnuplot_script(const RunLabel& label, int epochs) {
  std::ostringstream gp;
  gp << "# Redraw with: gnuplot plots.gp (in this folder)\n"
        "set terminal pngcairo size 800,500 font 'DejaVu Sans,11'\n"
        "set datafile separator ','\n"
        "set grid\n"
        "set key bottom right\n"
        "nn = 'BatchNormalNorm1d (noise "
     << label.noise
     << ")'\n"
        "bn = 'batch norm (power transform off)'\n\n"
        "set output 'accuracy.png'\n"
        "set title 'Fashion-MNIST test accuracy, MLP 784-784-784-10, seed "
     << label.seed
     << "'\n"
        "set xlabel 'epoch'\n"
        "set ylabel 'test accuracy (%)'\n";
  if (epochs <= 25) gp << "set xtics 1\nset xrange [0.5:" << epochs << ".5]\n";
  gp << "plot 'accuracy.csv' using 1:2 with linespoints lw 2 pt 7 lc rgb '#d95f02' title nn, \\\n"
        "     '' using 1:3 with linespoints lw 2 pt 5 lc rgb '#1b9e77' title bn\n\n"
        "set output 'feature_histogram.png'\n"
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
        "plot 'feature_histogram.csv' using 1:3 with boxes lc rgb '#1b9e77' title bn, \\\n"
        "     '' using 1:2 with boxes lc rgb '#d95f02' title nn, \\\n"
        "     '' using 1:4 with lines lw 2 dt 2 lc rgb 'black' title 'standard normal'\n\n"
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
        "plot 'feature_qq.csv' using 1:3 with points pt 5 ps 0.6 lc rgb '#1b9e77' title bn, \\\n"
        "     '' using 1:2 with points pt 7 ps 0.6 lc rgb '#d95f02' title nn, \\\n"
        "     x with lines lw 1.5 dt 2 lc rgb 'black' title 'y = x (normal)'\n";
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
