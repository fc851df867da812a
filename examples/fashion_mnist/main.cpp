// normnorm's main demo: the fully connected network of the paper's code repository
// (784-784-784-10; MNIST is that code's default data set, here it is Fashion-MNIST), trained
// once per arm from the same seed, the same initial weights and the same data order, and
// evaluated on the test set (eval mode: running statistics) after every epoch. The arms
// (arms.hpp): normality normalization (BatchNormalNorm1d, noise factor 0.4), by default;
// the power transform alone (noise 0), on request; plain batch normalization (the same
// layer with the power transform off), by default.
//
//   normnorm_fashion_mnist [--epochs 2] [--seed 1] [--threads N] [--noise 0.4]
//                          [--arms normality,batch] [--lr-steps 0.5,0.75]
//                          [--data /usr/share/datasets/fashion-mnist] [--out fashion_mnist_report]
//
// Run with --help for every option. The data comes from Debian's dataset-fashion-mnist
// package; the plots need gnuplot (gnuplot-nox).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <normnorm/normnorm.hpp>

#include "arms.hpp"
#include "data.hpp"
#include "feature_stats.hpp"
#include "lambda_report.hpp"
#include "mlp.hpp"
#include "progress.hpp"
#include "report.hpp"

namespace fm = fashion_mnist;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Args {
  int epochs = 2;
  std::uint64_t seed = 1;
  int threads = 1;
  double noise = 0.4;
  std::string arms = "normality,batch";
  std::string data = fm::default_data_dir;
  std::string out = "fashion_mnist_report";
  float lr = 0.1f;
  std::vector<double> lr_steps;  // fractions of the steps; empty: a constant rate
  float momentum = 0.9f;
  int batch_size = 128;
  int probe_layer = 2;
  int train_limit = 0, test_limit = 0;
  bool plots = true;
};

const char* const usage_text =
    "usage: normnorm_fashion_mnist [options]\n"
    "  --epochs N        epochs to train (default 2)\n"
    "  --seed N          seed of the initial weights, the data order and the noise (default 1)\n"
    "  --threads N       threads for the dense layers (Eigen + OpenMP) and for normnorm\n"
    "                    (an Eigen ThreadPoolDevice); default 1\n"
    "  --noise X         normality normalization's noise factor (default 0.4)\n"
    "  --arms LIST       the models to train, comma-separated, from: normality (noise --noise),\n"
    "                    transform (noise 0: the power transform alone), batch (plain batch norm);\n"
    "                    default normality,batch. All start from the same weights and data order\n"
    "  --data DIR        Fashion-MNIST IDX files, gzip'd or not\n"
    "                    (default /usr/share/datasets/fashion-mnist: apt-get install dataset-fashion-mnist)\n"
    "  --out DIR         report folder: CSVs, plots.gp and the PNGs (default ./fashion_mnist_report)\n"
    "  --lr X            SGD learning rate (default 0.1; momentum 0.9)\n"
    "  --lr-steps LIST   multiply the rate by 0.1 at these fractions of the training steps,\n"
    "                    e.g. 0.5,0.75 (default: none, a constant rate)\n"
    "  --batch-size N    training batch size (default 128)\n"
    "  --probe-layer N   hidden layer (1 or 2) whose features the plots show (default 2)\n"
    "  --train-limit N   use only the first N training images (quick smoke runs)\n"
    "  --test-limit N    use only the first N test images\n"
    "  --no-plots        write the CSVs but do not run gnuplot\n";

[[noreturn]] void usage_error(const std::string& problem) {
  std::fprintf(stderr, "normnorm_fashion_mnist: %s\n\n%s", problem.c_str(), usage_text);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
    if (flag == "--no-plots") {
      a.plots = false;
      continue;
    }
    if (i + 1 >= argc) usage_error("missing value after " + flag);
    const std::string value = argv[++i];
    try {
      std::size_t used = 0;
      const auto integer = [&](long low, long high) {
        const long v = std::stol(value, &used);
        if (used != value.size() || v < low || v > high) throw std::invalid_argument("range");
        return v;
      };
      const auto real = [&](double low, double high) {
        const double v = std::stod(value, &used);
        if (used != value.size() || !(v >= low && v <= high)) throw std::invalid_argument("range");
        return v;
      };
      if (flag == "--epochs") a.epochs = static_cast<int>(integer(1, 1000));
      else if (flag == "--seed") a.seed = static_cast<std::uint64_t>(integer(0, 1L << 40));
      else if (flag == "--threads") a.threads = static_cast<int>(integer(1, 256));
      else if (flag == "--noise") a.noise = real(0, 100);
      else if (flag == "--arms") {
        fm::parse_arms(value, a.noise);  // rejects a bad list now; run() builds the arms once --noise is known
        a.arms = value;
      }
      else if (flag == "--lr-steps") a.lr_steps = fm::parse_fractions(value);
      else if (flag == "--data") a.data = value;
      else if (flag == "--out") a.out = value;
      else if (flag == "--lr") a.lr = static_cast<float>(real(1e-9, 100));
      else if (flag == "--batch-size") a.batch_size = static_cast<int>(integer(2, 60000));
      else if (flag == "--probe-layer") a.probe_layer = static_cast<int>(integer(1, 2));
      else if (flag == "--train-limit") a.train_limit = static_cast<int>(integer(2, 60000));
      else if (flag == "--test-limit") a.test_limit = static_cast<int>(integer(1, 10000));
      else usage_error("unknown option " + flag);
    } catch (const std::invalid_argument&) {
      usage_error("bad value '" + value + "' for " + flag);
    } catch (const std::out_of_range&) {
      usage_error("bad value '" + value + "' for " + flag);
    }
  }
  return a;
}

// Mean cross-entropy and accuracy (percent) on a split, in eval mode, 1000 images at a time.
struct Evaluation {
  double accuracy = 0, loss = 0;
};

Evaluation evaluate(fm::Mlp& model, const fm::Split& split) {
  const int batch = 1000;
  fm::Matrix grad;
  double loss = 0;
  long correct = 0;
  for (int start = 0; start < split.count(); start += batch) {
    const int rows = std::min(batch, split.count() - start);
    model.forward(split.images.middleRows(start, rows), /*training=*/false);
    const int* labels = split.labels.data() + start;
    loss += rows * static_cast<double>(fm::Mlp::softmax_cross_entropy(model.logits(), labels, grad));
    for (int i = 0; i < rows; ++i) {
      Eigen::Index predicted = 0;
      model.logits().row(i).maxCoeff(&predicted);
      correct += predicted == labels[i];
    }
  }
  return {100.0 * static_cast<double>(correct) / split.count(), loss / split.count()};
}

// Each hidden layer's norm input and normalized output (before the affine:
// (out - beta) / gamma) on the whole split, in eval mode; rows are images.
struct Probe {
  fm::Matrix input[2], normalized[2];
};

Probe probe(fm::Mlp& model, const fm::Split& split) {
  Probe p;
  for (int layer = 0; layer < 2; ++layer) {
    p.input[layer].resize(split.count(), fm::Mlp::hidden);
    p.normalized[layer].resize(split.count(), fm::Mlp::hidden);
  }
  const int batch = 1000;
  for (int start = 0; start < split.count(); start += batch) {
    const int rows = std::min(batch, split.count() - start);
    model.forward(split.images.middleRows(start, rows), /*training=*/false);
    for (int layer = 0; layer < 2; ++layer) {
      p.input[layer].middleRows(start, rows) = model.norm_input(layer + 1);
      p.normalized[layer].middleRows(start, rows) = model.norm_output(layer + 1);
    }
  }
  for (int layer = 0; layer < 2; ++layer) {
    auto& norm = model.norm(layer + 1);
    const Eigen::Map<const fm::RowVector> gamma(norm.weight().data(), fm::Mlp::hidden),
        beta(norm.bias().data(), fm::Mlp::hidden);
    // A gamma of exactly 0 would make the feature constant; feature_moments skips those.
    const fm::RowVector inverse_gamma = gamma.unaryExpr([](float g) { return g != 0.0f ? 1.0f / g : 0.0f; });
    p.normalized[layer] = (p.normalized[layer].rowwise() - beta).array().rowwise() * inverse_gamma.array();
  }
  return p;
}

// The models of the comparison, one per arm, in the order every table prints them.
struct Models {
  std::vector<fm::Arm> arms;
  std::vector<std::unique_ptr<fm::Mlp>> nets;
  std::size_t size() const { return arms.size(); }
  fm::Mlp& operator[](std::size_t m) const { return *nets[m]; }
};

// Text built with printf formats, one line at a time: the summary is printed and also
// saved in the report.
struct Lines {
  std::ostringstream text;
  template <class... Values>
  void operator()(const char* format, Values... values) {
    char line[512];
    std::snprintf(line, sizeof line, format, values...);
    text << line << '\n';
  }
};

// One epoch: every model takes a step on each batch of the same shuffled order. Returns
// the epoch's numbers for each (test accuracy in eval mode after the epoch).
fm::EpochRecord train_epoch(const Args& args, const fm::LearningRateSchedule& schedule, int epoch,
                            const fm::Dataset& data, const std::vector<int>& order, const Models& models,
                            fm::ProgressLine& progress) {
  const int train_count = data.train.count();
  const int steps = (train_count + args.batch_size - 1) / args.batch_size;
  const long total_steps = static_cast<long>(steps) * args.epochs;
  fm::Matrix batch(args.batch_size, fm::Mlp::inputs);
  std::vector<int> labels(static_cast<std::size_t>(args.batch_size));
  std::vector<double> loss_sum(models.size(), 0.0);
  for (std::size_t m = 0; m < models.size(); ++m) models[m].reset_times();
  const auto start_time = Clock::now();
  float lr = args.lr;

  for (int step = 0; step < steps; ++step) {
    const int start = step * args.batch_size;
    const int rows = std::min(args.batch_size, train_count - start);
    batch.resize(rows, fm::Mlp::inputs);
    for (int i = 0; i < rows; ++i) {
      const int index = order[static_cast<std::size_t>(start + i)];
      batch.row(i) = data.train.images.row(index);
      labels[static_cast<std::size_t>(i)] = data.train.labels[static_cast<std::size_t>(index)];
    }
    lr = schedule.at(static_cast<long>(epoch - 1) * steps + step, total_steps);
    for (std::size_t m = 0; m < models.size(); ++m)
      loss_sum[m] += models[m].train_step(batch, labels.data(), lr, args.momentum);

    fm::ProgressLine::State s;
    s.epoch = epoch, s.epochs = args.epochs, s.step = step + 1, s.steps = steps;
    for (std::size_t m = 0; m < models.size(); ++m) s.losses.emplace_back(models.arms[m].tag, loss_sum[m] / (step + 1));
    s.steps_per_second = (step + 1) / seconds_since(start_time);
    s.eta_epoch = (steps - step - 1) / s.steps_per_second;
    s.eta_run = s.eta_epoch + (args.epochs - epoch) * steps / s.steps_per_second;
    progress.update(s);
  }
  progress.clear();

  fm::EpochRecord record;
  record.epoch = epoch;
  record.wall_seconds = seconds_since(start_time);
  record.steps = steps;
  record.learning_rate = lr;
  for (std::size_t m = 0; m < models.size(); ++m) {
    fm::ModelEpoch result;
    const auto eval_start = Clock::now();
    const Evaluation test = evaluate(models[m], data.test);
    result.eval_seconds = seconds_since(eval_start);
    result.test_accuracy = test.accuracy;
    result.test_loss = test.loss;
    result.train_loss = loss_sum[m] / steps;
    result.train_seconds = models[m].times().total;
    result.norm_seconds = models[m].times().normalization;
    record.arms.push_back(result);
  }
  return record;
}

void print_epoch(const std::vector<fm::Arm>& arms, const fm::EpochRecord& r, int epochs, bool stepped_lr) {
  const double eta = (epochs - r.epoch) * r.wall_seconds;
  char rate[48] = "";
  if (stepped_lr) std::snprintf(rate, sizeof rate, ", lr %g", r.learning_rate);
  const char* const models = arms.size() == 1 ? "one model" : arms.size() == 2 ? "both models" : "all models";
  std::printf("epoch %d/%d: %.1f s training (%.1f steps/s, %s)%s, ETA %s\n", r.epoch, epochs, r.wall_seconds,
              r.steps / r.wall_seconds, models, rate, fm::format_duration(eta).c_str());
  for (std::size_t m = 0; m < arms.size(); ++m) {
    const fm::ModelEpoch& e = r.arms[m];
    std::printf("  %-14s  test acc %.2f%%  test loss %.4f  train loss %.4f | %.1f s: normalization %.2f s (%.0f%%), "
                "rest %.1f s; test eval %.2f s\n",
                arms[m].name.c_str(), e.test_accuracy,
                e.test_loss, e.train_loss, e.train_seconds, e.norm_seconds, 100.0 * e.norm_seconds / e.train_seconds,
                e.train_seconds - e.norm_seconds, e.eval_seconds);
  }
  std::fflush(stdout);
}

// Test accuracy per epoch, the best epoch, and where the training time went. With batch
// norm among the arms, each other arm's difference from it follows the accuracies.
void accuracy_table(Lines& line, const Args& args, const std::vector<fm::Arm>& arms,
                    const std::vector<fm::EpochRecord>& records) {
  line("test accuracy (%%), seed %llu, eval mode (running statistics)", static_cast<unsigned long long>(args.seed));
  const int reference = fm::reference_arm(arms);
  std::string header;
  char cell[64];
  std::snprintf(cell, sizeof cell, "%6s", "epoch");
  header += cell;
  // Columns as wide as their header plus two, at least 12: the two-arm table keeps its old layout.
  const auto width = [&](std::size_t m) {
    return static_cast<int>(std::max<std::size_t>(arms[m].column.size() + 2, 12));
  };
  for (std::size_t m = 0; m < arms.size(); ++m) {
    std::snprintf(cell, sizeof cell, "  %*s", width(m), arms[m].column.c_str());
    header += cell;
  }
  for (std::size_t m = 0; m < arms.size(); ++m)
    if (static_cast<int>(m) != reference && reference >= 0) {
      const std::string name =
          arms.size() == 2 ? "difference" : arms[m].tag + " - " + arms[static_cast<std::size_t>(reference)].tag;
      std::snprintf(cell, sizeof cell, "  %10s", name.c_str());
      header += cell;
    }
  line("%s", header.c_str());

  const auto row = [&](const char* label, const std::vector<double>& accuracy) {
    std::string text;
    std::snprintf(cell, sizeof cell, "%6s", label);
    text += cell;
    for (std::size_t m = 0; m < arms.size(); ++m) {
      std::snprintf(cell, sizeof cell, "  %*.2f", width(m), accuracy[m]);
      text += cell;
    }
    for (std::size_t m = 0; m < arms.size(); ++m)
      if (static_cast<int>(m) != reference && reference >= 0) {
        std::snprintf(cell, sizeof cell, "  %+10.2f", accuracy[m] - accuracy[static_cast<std::size_t>(reference)]);
        text += cell;
      }
    line("%s", text.c_str());
  };
  std::vector<double> best(arms.size(), 0.0), train(arms.size(), 0.0), norm(arms.size(), 0.0);
  for (const fm::EpochRecord& r : records) {
    std::vector<double> accuracy;
    for (std::size_t m = 0; m < arms.size(); ++m) {
      accuracy.push_back(r.arms[m].test_accuracy);
      best[m] = std::max(best[m], r.arms[m].test_accuracy);
      train[m] += r.arms[m].train_seconds;
      norm[m] += r.arms[m].norm_seconds;
    }
    row(std::to_string(r.epoch).c_str(), accuracy);
  }
  row("best", best);
  std::string times = "training time:";
  for (std::size_t m = 0; m < arms.size(); ++m) {
    char text[160];
    std::snprintf(text, sizeof text, "%s %s %.1f s (normalization %.1f s = %.1f%%)", m == 0 ? "" : ",",
                  arms[m].name.c_str(), train[m], norm[m], 100 * norm[m] / train[m]);
    times += text;
  }
  line("%s", times.c_str());
}

// The paper's one-step lambda against newton(2) and the maximum-likelihood lambda on
// the real features of a model with the power transform (docs/lambda-search.md).
void lambda_table(Lines& line, std::string model_name, const Probe& transform_probe, int batch_size) {
  std::replace(model_name.begin(), model_name.end(), ' ', '-');
  line("lambda estimates on the %s model's norm inputs (test set in batches of %d, per batch and feature):",
       model_name.c_str(), batch_size);
  line("%-7s %-28s %9s %9s %9s", "layer", "|estimate - exact|", "median", "90th pct", "max");
  normnorm::Options options = normnorm::default_options(normnorm::Form::batch_1d);
  for (int layer = 0; layer < 2; ++layer) {
    const fm::Matrix& features = transform_probe.input[layer];
    options.estimator = normnorm::LambdaEstimator::exact;
    const std::vector<double> exact = fm::batch_lambdas(features, batch_size, options);
    options.estimator = normnorm::LambdaEstimator::newton_step;
    const std::vector<double> one_step = fm::batch_lambdas(features, batch_size, options);
    options.estimator = normnorm::LambdaEstimator::newton;
    options.newton_iterations = 2;
    const std::vector<double> newton2 = fm::batch_lambdas(features, batch_size, options);
    const fm::LambdaGap gaps[2] = {fm::lambda_gap(one_step, exact), fm::lambda_gap(newton2, exact)};
    const char* const names[2] = {"one step (the paper's)", "newton(2)"};
    for (int e = 0; e < 2; ++e)
      line("%-7d %-28s %9.4f %9.4f %9.4f", layer + 1, names[e], gaps[e].median, gaps[e].p90, gaps[e].max);
  }
}

// Per-feature skewness and excess kurtosis of both layers' norm inputs and normalized
// outputs, summarized in the table and written feature by feature to feature_moments.csv.
void moments_table(Lines& line, const std::vector<fm::Arm>& arms, const std::vector<Probe>& probes, int images,
                   const std::filesystem::path& csv_path) {
  line("per-feature shape of the hidden features on the test set (eval mode, %d images, 784 features per layer);",
       images);
  line("'normalized' is the norm layer's output before its affine, (out - beta) / gamma; a Gaussian has 0 and 0");
  line("%-7s %-15s %-11s | %8s %8s %8s | %8s %8s %8s", "layer", "model", "features", "skew med", "mean|.|",
       "max|.|", "kurt med", "mean|.|", "max|.|");
  std::ofstream csv = fm::open_for_writing(csv_path);
  csv << "layer,model,features,feature,skewness,excess_kurtosis\n";
  for (int layer = 0; layer < 2; ++layer)
    for (std::size_t m = 0; m < arms.size(); ++m)
      for (int which = 0; which < 2; ++which) {
        const fm::Matrix& features = which == 0 ? probes[m].input[layer] : probes[m].normalized[layer];
        const fm::FeatureMoments moments = fm::feature_moments(features);
        const fm::Summary skew = fm::summarize(moments.skewness), kurt = fm::summarize(moments.excess_kurtosis);
        line("%-7d %-15s %-11s | %8.3f %8.3f %8.3f | %8.3f %8.3f %8.3f", layer + 1, arms[m].name.c_str(),
             which == 0 ? "norm input" : "normalized", skew.median, skew.mean_abs, skew.max_abs, kurt.median,
             kurt.mean_abs, kurt.max_abs);
        for (std::size_t j = 0; j < moments.skewness.size(); ++j)
          csv << layer + 1 << ',' << arms[m].key << ',' << (which == 0 ? "input" : "normalized") << ',' << j << ','
              << moments.skewness[j] << ',' << moments.excess_kurtosis[j] << '\n';
      }
}

// The probe layer's normalized features, each standardized, pooled over features and
// images: a density histogram on [-5, 5) and sample quantiles at Phi(z), z = -4, -3.9, ..., 4.
struct PooledDistribution {
  static constexpr double low = -5, high = 5;
  static constexpr int bins = 100;
  std::vector<double> z;
  std::vector<std::vector<double>> density, quantiles;  // one per arm
  double at(std::size_t m, double z_value) const {
    return quantiles[m][static_cast<std::size_t>(std::lround((z_value + 4.0) / 0.1))];
  }
};

PooledDistribution pooled_distribution(const std::vector<Probe>& probes, int layer) {
  PooledDistribution d;
  for (int i = -40; i <= 40; ++i) d.z.push_back(i / 10.0);
  for (const Probe& p : probes) {
    const std::vector<float> pooled = fm::pooled_standardized(p.normalized[layer - 1]);
    d.density.push_back(fm::density_histogram(pooled, d.low, d.high, d.bins));
    d.quantiles.emplace_back();
    for (double z : d.z) d.quantiles.back().push_back(fm::quantile(pooled, fm::standard_normal_cdf(z)));
  }
  return d;
}

// accuracy.csv, feature_histogram.csv, feature_qq.csv, plots.gp and summary.txt (the
// feature_moments.csv is written with its table); then gnuplot, unless --no-plots.
std::string write_report(const Args& args, const std::vector<fm::Arm>& arms, const std::filesystem::path& out_dir,
                         const std::string& command, const std::vector<fm::EpochRecord>& records,
                         const PooledDistribution& pooled, const std::string& summary) {
  fm::write_accuracy_csv(out_dir / "accuracy.csv", arms, records);
  fm::write_histogram_csv(out_dir / "feature_histogram.csv", pooled.low, pooled.high, arms, pooled.density);
  fm::write_qq_csv(out_dir / "feature_qq.csv", pooled.z, arms, pooled.quantiles);

  fm::RunLabel label{static_cast<int>(args.seed), args.probe_layer};
  for (const auto& q : pooled.quantiles)  // room for the furthest point, in steps of 0.5
    for (double v : q) label.qq_limit = std::max(label.qq_limit, std::ceil(std::fabs(v) * 1.05 * 2) / 2);
  fm::open_for_writing(out_dir / "plots.gp") << fm::gnuplot_script(label, arms, args.epochs);
  fm::open_for_writing(out_dir / "summary.txt") << "normnorm Fashion-MNIST demo:" << command << "\n\n" << summary;
  return args.plots ? fm::render_plots(out_dir) : "plots skipped (--no-plots)";
}

// "x0.1 at 50%, 75% of the steps (epoch 11.0, 16.0)": where the decays fall.
std::string describe_schedule(const fm::LearningRateSchedule& schedule, int epochs) {
  if (schedule.fractions.empty()) return "constant";
  std::ostringstream text;
  text << "x0.1 at";
  for (std::size_t i = 0; i < schedule.fractions.size(); ++i)
    text << (i ? ", " : " ") << 100 * schedule.fractions[i] << '%';
  text << " of the steps (from epoch";
  for (std::size_t i = 0; i < schedule.fractions.size(); ++i) {
    char at[32];
    std::snprintf(at, sizeof at, "%s %.1f", i ? "," : "", 1 + schedule.fractions[i] * epochs);
    text << at;
  }
  text << ")";
  return text.str();
}

int run(const Args& args, const std::string& command) {
  const auto run_start = Clock::now();
  // Threads: Eigen's matrix products use OpenMP; normnorm uses the Eigen thread pool it is
  // given (its results are bit-identical for any thread count). One thread: no pool at all.
#ifdef _OPENMP
  Eigen::setNbThreads(args.threads);
  std::string threading = std::to_string(Eigen::nbThreads()) + " thread(s) for the dense layers (Eigen + OpenMP)";
#else
  std::string threading = "1 thread for the dense layers (built without OpenMP)";
#endif
  std::unique_ptr<Eigen::ThreadPool> pool;
  std::unique_ptr<Eigen::ThreadPoolDevice> device;
  if (args.threads > 1) {
    pool = std::make_unique<Eigen::ThreadPool>(args.threads);
    device = std::make_unique<Eigen::ThreadPoolDevice>(pool.get(), args.threads);
    threading += ", " + std::to_string(args.threads) + " for normnorm (Eigen ThreadPoolDevice)";
  } else {
    threading += ", 1 for normnorm";
  }

  fm::Dataset data;
  try {
    data = fm::load(args.data, args.train_limit, args.test_limit);
  } catch (const fm::DataMissing& missing) {
    std::fprintf(stderr,
                 "error: %s\n"
                 "  Install Debian's package:  apt-get install dataset-fashion-mnist\n"
                 "  (it puts the four files in %s), or pass --data DIR with\n"
                 "  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and\n"
                 "  t10k-labels-idx1-ubyte.gz (gzip'd or unpacked).\n",
                 missing.what(), fm::default_data_dir);
    return 1;
  }
  // Fail now, not after the training, if the report folder cannot be written.
  const std::filesystem::path out_dir(args.out);
  std::filesystem::create_directories(out_dir);
  fm::open_for_writing(out_dir / "summary.txt") << "normnorm Fashion-MNIST demo:" << command << "\n\n(running)\n";

  // Same weight seed for every arm: all start from identical weights. The noise seed only
  // matters to the arm with noise.
  Models models;
  models.arms = fm::parse_arms(args.arms, args.noise);
  for (const fm::Arm& arm : models.arms) {
    models.nets.push_back(std::make_unique<fm::Mlp>(arm.options, args.seed, /*noise_seed=*/args.seed * 2 + 1));
    if (device) models.nets.back()->set_execution(normnorm::Execution{normnorm::SimdPath::automatic, device.get()});
  }
  const fm::LearningRateSchedule schedule{args.lr, args.lr_steps};

  const int train_count = data.train.count();
  const int steps = (train_count + args.batch_size - 1) / args.batch_size;
  std::string arm_list, progress_legend;
  for (std::size_t m = 0; m < models.size(); ++m) {
    const fm::Arm& arm = models.arms[m];
    const char* const separator = m == 0 ? "" : m + 1 == models.size() ? " vs " : ", ";
    arm_list += separator + (arm.has_transform() ? arm.plot_title : arm.name);
    progress_legend += (m == 0 ? "" : ", ") + arm.tag + " = " + arm.name;
  }
  std::printf("normnorm %s: Fashion-MNIST, MLP 784-784-784-10, %s\n", NORMNORM_VERSION_STRING, arm_list.c_str());
  std::printf("data    %s: %d training, %d test images, standardized by the training mean %.4f and std %.4f\n",
              args.data.c_str(), train_count, data.test.count(), data.pixel_mean, data.pixel_std);
  std::printf("train   %d epoch%s x %d steps, batch %d, SGD lr %g momentum %g, seed %llu; %s\n", args.epochs,
              args.epochs == 1 ? "" : "s", steps, args.batch_size, static_cast<double>(args.lr),
              static_cast<double>(args.momentum), static_cast<unsigned long long>(args.seed), threading.c_str());
  if (!schedule.fractions.empty())
    std::printf("        learning rate %s\n", describe_schedule(schedule, args.epochs).c_str());
  std::printf("        (progress: %s)\n\n", progress_legend.c_str());

  std::mt19937_64 order_rng(args.seed ^ 0x5eedda7aULL);  // the data order, shared by every model
  std::vector<int> order(static_cast<std::size_t>(train_count));
  std::iota(order.begin(), order.end(), 0);
  std::vector<fm::EpochRecord> records;
  fm::ProgressLine progress;
  for (int epoch = 1; epoch <= args.epochs; ++epoch) {
    for (int i = train_count - 1; i > 0; --i)  // Fisher-Yates, with mt19937_64's fixed sequence
      std::swap(order[static_cast<std::size_t>(i)], order[order_rng() % static_cast<std::uint64_t>(i + 1)]);
    records.push_back(train_epoch(args, schedule, epoch, data, order, models, progress));
    print_epoch(models.arms, records.back(), args.epochs, !schedule.fractions.empty());
  }

  Lines line;
  accuracy_table(line, args, models.arms, records);
  line("");
  std::vector<Probe> probes;
  for (std::size_t m = 0; m < models.size(); ++m) probes.push_back(probe(models[m], data.test));
  moments_table(line, models.arms, probes, data.test.count(), out_dir / "feature_moments.csv");
  const PooledDistribution pooled = pooled_distribution(probes, args.probe_layer);
  line("");
  line("layer %d pooled normalized features: quantile at Phi(z) for z = -3, -2, 2, 3 (a Gaussian gives z)",
       args.probe_layer);
  for (std::size_t m = 0; m < models.size(); ++m)
    line("  %-15s %7.3f %7.3f %7.3f %7.3f", models.arms[m].name.c_str(), pooled.at(m, -3), pooled.at(m, -2),
         pooled.at(m, 2), pooled.at(m, 3));
  for (std::size_t m = 0; m < models.size(); ++m)
    if (models.arms[m].has_transform()) {  // the first model with the power transform
      line("");
      lambda_table(line, models.arms[m].name, probes[m], args.batch_size);
      break;
    }
  const std::string summary = line.text.str();
  std::printf("\n%s", summary.c_str());

  const std::string plot_status = write_report(args, models.arms, out_dir, command, records, pooled, summary);
  std::printf("\nreport: %s/ (accuracy.csv, feature_moments.csv, feature_histogram.csv, feature_qq.csv, "
              "summary.txt, plots.gp%s)\n%s\ntotal time %s\n",
              out_dir.string().c_str(), args.plots ? ", accuracy.png, feature_histogram.png, feature_qq.png" : "",
              plot_status.c_str(), fm::format_duration(seconds_since(run_start)).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  std::string command;
  for (int i = 0; i < argc; ++i) command += std::string(" ") + argv[i];
  try {
    return run(args, command);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "normnorm_fashion_mnist: error: %s\n", error.what());
    return 1;
  }
}
