// normnorm's main demo: the paper's fully connected network on Fashion-MNIST, trained
// twice from the same seed and the same data order -- once with normality normalization
// (BatchNormalNorm1d, noise factor 0.4) and once with plain batch normalization (the same
// layer with the power transform off) -- and both evaluated on the test set (eval mode:
// running statistics) after every epoch.
//
//   normnorm_fashion_mnist [--epochs 2] [--seed 1] [--threads N] [--noise 0.4]
//                          [--data /usr/share/datasets/fashion-mnist] [--out fashion_mnist_report]
//
// --epochs 20 is the paper's schedule. Run with --help for every option. The data comes from
// Debian's dataset-fashion-mnist package; the plots need gnuplot (gnuplot-nox).

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
  std::string data = fm::default_data_dir;
  std::string out = "fashion_mnist_report";
  float lr = 0.1f;
  float momentum = 0.9f;
  int batch_size = 128;
  int probe_layer = 2;
  int train_limit = 0, test_limit = 0;
  bool plots = true;
};

const char* const usage_text =
    "usage: normnorm_fashion_mnist [options]\n"
    "  --epochs N        epochs to train (default 2; the paper's schedule is 20)\n"
    "  --seed N          seed of the initial weights, the data order and the noise (default 1)\n"
    "  --threads N       threads for the dense layers (Eigen + OpenMP) and for normnorm\n"
    "                    (an Eigen ThreadPoolDevice); default 1\n"
    "  --noise X         normality normalization's noise factor (default 0.4)\n"
    "  --data DIR        Fashion-MNIST IDX files, gzip'd or not\n"
    "                    (default /usr/share/datasets/fashion-mnist: apt-get install dataset-fashion-mnist)\n"
    "  --out DIR         report folder: CSVs, plots.gp and the PNGs (default ./fashion_mnist_report)\n"
    "  --lr X            SGD learning rate (default 0.1; momentum 0.9)\n"
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

// Both models of the comparison, in the order every table prints them.
struct Pair {
  fm::Mlp& normal_norm;
  fm::Mlp& batch_norm;
  fm::Mlp* operator[](int m) const { return m == 0 ? &normal_norm : &batch_norm; }
};
const char* const model_names[2] = {"normality norm", "batch norm"};
const char* const model_keys[2] = {"normality_norm", "batch_norm"};

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

// One epoch: both models take a step on each batch of the same shuffled order. Returns
// the epoch's numbers for both (test accuracy in eval mode after the epoch).
fm::EpochRecord train_epoch(const Args& args, int epoch, const fm::Dataset& data, const std::vector<int>& order,
                            Pair models, fm::ProgressLine& progress) {
  const int train_count = data.train.count();
  const int steps = (train_count + args.batch_size - 1) / args.batch_size;
  fm::Matrix batch(args.batch_size, fm::Mlp::inputs);
  std::vector<int> labels(static_cast<std::size_t>(args.batch_size));
  double loss_sum[2] = {0, 0};
  for (int m = 0; m < 2; ++m) models[m]->reset_times();
  const auto start_time = Clock::now();

  for (int step = 0; step < steps; ++step) {
    const int start = step * args.batch_size;
    const int rows = std::min(args.batch_size, train_count - start);
    batch.resize(rows, fm::Mlp::inputs);
    for (int i = 0; i < rows; ++i) {
      const int index = order[static_cast<std::size_t>(start + i)];
      batch.row(i) = data.train.images.row(index);
      labels[static_cast<std::size_t>(i)] = data.train.labels[static_cast<std::size_t>(index)];
    }
    for (int m = 0; m < 2; ++m) loss_sum[m] += models[m]->train_step(batch, labels.data(), args.lr, args.momentum);

    fm::ProgressLine::State s;
    s.epoch = epoch, s.epochs = args.epochs, s.step = step + 1, s.steps = steps;
    s.loss_normal_norm = loss_sum[0] / (step + 1), s.loss_batch_norm = loss_sum[1] / (step + 1);
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
  fm::ModelEpoch* results[2] = {&record.normal_norm, &record.batch_norm};
  for (int m = 0; m < 2; ++m) {
    const auto eval_start = Clock::now();
    const Evaluation test = evaluate(*models[m], data.test);
    results[m]->eval_seconds = seconds_since(eval_start);
    results[m]->test_accuracy = test.accuracy;
    results[m]->test_loss = test.loss;
    results[m]->train_loss = loss_sum[m] / steps;
    results[m]->train_seconds = models[m]->times().total;
    results[m]->norm_seconds = models[m]->times().normalization;
  }
  return record;
}

void print_epoch(const fm::EpochRecord& r, int epochs) {
  const double eta = (epochs - r.epoch) * r.wall_seconds;
  std::printf("epoch %d/%d: %.1f s training (%.1f steps/s, both models), ETA %s\n", r.epoch, epochs, r.wall_seconds,
              r.steps / r.wall_seconds, fm::format_duration(eta).c_str());
  const fm::ModelEpoch* results[2] = {&r.normal_norm, &r.batch_norm};
  for (int m = 0; m < 2; ++m) {
    const fm::ModelEpoch& e = *results[m];
    std::printf("  %-14s  test acc %.2f%%  test loss %.4f  train loss %.4f | %.1f s: normalization %.2f s (%.0f%%), "
                "rest %.1f s; test eval %.2f s\n",
                model_names[m], e.test_accuracy, e.test_loss, e.train_loss, e.train_seconds, e.norm_seconds,
                100.0 * e.norm_seconds / e.train_seconds, e.train_seconds - e.norm_seconds, e.eval_seconds);
  }
  std::fflush(stdout);
}

// Test accuracy per epoch, the best epoch, and where the training time went.
void accuracy_table(Lines& line, const Args& args, const std::vector<fm::EpochRecord>& records) {
  line("test accuracy (%%), seed %llu, eval mode (running statistics)", static_cast<unsigned long long>(args.seed));
  char normal_header[64];
  std::snprintf(normal_header, sizeof normal_header, "normality norm (%g)", args.noise);
  line("%6s  %22s  %12s  %10s", "epoch", normal_header, "batch norm", "difference");
  double best[2] = {0, 0};
  double train[2] = {0, 0}, norm[2] = {0, 0};
  for (const fm::EpochRecord& r : records) {
    line("%6d  %22.2f  %12.2f  %+10.2f", r.epoch, r.normal_norm.test_accuracy, r.batch_norm.test_accuracy,
         r.normal_norm.test_accuracy - r.batch_norm.test_accuracy);
    const fm::ModelEpoch* results[2] = {&r.normal_norm, &r.batch_norm};
    for (int m = 0; m < 2; ++m) {
      best[m] = std::max(best[m], results[m]->test_accuracy);
      train[m] += results[m]->train_seconds;
      norm[m] += results[m]->norm_seconds;
    }
  }
  line("%6s  %22.2f  %12.2f  %+10.2f", "best", best[0], best[1], best[0] - best[1]);
  line("training time: normality norm %.1f s (normalization %.1f s = %.1f%%), batch norm %.1f s "
       "(normalization %.1f s = %.1f%%)",
       train[0], norm[0], 100 * norm[0] / train[0], train[1], norm[1], 100 * norm[1] / train[1]);
}

// The paper's one-step lambda against newton(2) and the maximum-likelihood lambda on
// the normality-norm model's real features (docs/lambda-search.md).
void lambda_table(Lines& line, const Probe& normal_norm_probe, int batch_size) {
  line("lambda estimates on the normality-norm model's norm inputs (test set in batches of %d, per batch and feature):",
       batch_size);
  line("%-7s %-28s %9s %9s %9s", "layer", "|estimate - exact|", "median", "90th pct", "max");
  normnorm::Options options = normnorm::default_options(normnorm::Form::batch_1d);
  for (int layer = 0; layer < 2; ++layer) {
    const fm::Matrix& features = normal_norm_probe.input[layer];
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
void moments_table(Lines& line, const Probe (&probes)[2], int images, const std::filesystem::path& csv_path) {
  line("per-feature shape of the hidden features on the test set (eval mode, %d images, 784 features per layer);",
       images);
  line("'normalized' is the norm layer's output before its affine, (out - beta) / gamma; a Gaussian has 0 and 0");
  line("%-7s %-15s %-11s | %8s %8s %8s | %8s %8s %8s", "layer", "model", "features", "skew med", "mean|.|",
       "max|.|", "kurt med", "mean|.|", "max|.|");
  std::ofstream csv = fm::open_for_writing(csv_path);
  csv << "layer,model,features,feature,skewness,excess_kurtosis\n";
  for (int layer = 0; layer < 2; ++layer)
    for (int m = 0; m < 2; ++m)
      for (int which = 0; which < 2; ++which) {
        const fm::Matrix& features = which == 0 ? probes[m].input[layer] : probes[m].normalized[layer];
        const fm::FeatureMoments moments = fm::feature_moments(features);
        const fm::Summary skew = fm::summarize(moments.skewness), kurt = fm::summarize(moments.excess_kurtosis);
        line("%-7d %-15s %-11s | %8.3f %8.3f %8.3f | %8.3f %8.3f %8.3f", layer + 1, model_names[m],
             which == 0 ? "norm input" : "normalized", skew.median, skew.mean_abs, skew.max_abs, kurt.median,
             kurt.mean_abs, kurt.max_abs);
        for (std::size_t j = 0; j < moments.skewness.size(); ++j)
          csv << layer + 1 << ',' << model_keys[m] << ',' << (which == 0 ? "input" : "normalized") << ',' << j << ','
              << moments.skewness[j] << ',' << moments.excess_kurtosis[j] << '\n';
      }
}

// The probe layer's normalized features, each standardized, pooled over features and
// images: a density histogram on [-5, 5) and sample quantiles at Phi(z), z = -4, -3.9, ..., 4.
struct PooledDistribution {
  static constexpr double low = -5, high = 5;
  static constexpr int bins = 100;
  std::vector<double> z;
  std::vector<double> density[2], quantiles[2];
  double at(int m, double z_value) const { return quantiles[m][static_cast<std::size_t>(std::lround((z_value + 4.0) / 0.1))]; }
};

PooledDistribution pooled_distribution(const Probe (&probes)[2], int layer) {
  PooledDistribution d;
  for (int i = -40; i <= 40; ++i) d.z.push_back(i / 10.0);
  for (int m = 0; m < 2; ++m) {
    const std::vector<float> pooled = fm::pooled_standardized(probes[m].normalized[layer - 1]);
    d.density[m] = fm::density_histogram(pooled, d.low, d.high, d.bins);
    for (double z : d.z) d.quantiles[m].push_back(fm::quantile(pooled, fm::standard_normal_cdf(z)));
  }
  return d;
}

// accuracy.csv, feature_histogram.csv, feature_qq.csv, plots.gp and summary.txt (the
// feature_moments.csv is written with its table); then gnuplot, unless --no-plots.
std::string write_report(const Args& args, const std::filesystem::path& out_dir, const std::string& command,
                         const std::vector<fm::EpochRecord>& records, const PooledDistribution& pooled,
                         const std::string& summary) {
  fm::write_accuracy_csv(out_dir / "accuracy.csv", records);
  fm::write_histogram_csv(out_dir / "feature_histogram.csv", pooled.low, pooled.high, pooled.density[0],
                          pooled.density[1]);
  fm::write_qq_csv(out_dir / "feature_qq.csv", pooled.z, pooled.quantiles[0], pooled.quantiles[1]);

  fm::RunLabel label{static_cast<int>(args.seed), args.noise, args.probe_layer};
  for (const auto& q : pooled.quantiles)  // room for the furthest point, in steps of 0.5
    for (double v : q) label.qq_limit = std::max(label.qq_limit, std::ceil(std::fabs(v) * 1.05 * 2) / 2);
  fm::open_for_writing(out_dir / "plots.gp") << fm::gnuplot_script(label, args.epochs);
  fm::open_for_writing(out_dir / "summary.txt") << "normnorm Fashion-MNIST demo:" << command << "\n\n" << summary;
  return args.plots ? fm::render_plots(out_dir) : "plots skipped (--no-plots)";
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

  normnorm::Options normal_options = normnorm::default_options(normnorm::Form::batch_1d);
  normal_options.noise_train = args.noise;
  normnorm::Options plain_options = normnorm::default_options(normnorm::Form::batch_1d);
  plain_options.power_transform = false;  // plain batch norm: lambda = 1, no noise

  // Same weight seed: both models start from identical weights.
  fm::Mlp normal_norm(normal_options, args.seed, /*noise_seed=*/args.seed * 2 + 1);
  fm::Mlp batch_norm(plain_options, args.seed, /*noise_seed=*/args.seed * 2 + 1);
  const Pair models{normal_norm, batch_norm};
  if (device)
    for (int m = 0; m < 2; ++m) models[m]->set_execution(normnorm::Execution{true, device.get()});

  const int train_count = data.train.count();
  const int steps = (train_count + args.batch_size - 1) / args.batch_size;
  std::printf("normnorm %s: Fashion-MNIST, MLP 784-784-784-10, BatchNormalNorm1d (noise %g) vs batch norm\n",
              NORMNORM_VERSION_STRING, args.noise);
  std::printf("data    %s: %d training, %d test images, standardized by the training mean %.4f and std %.4f\n",
              args.data.c_str(), train_count, data.test.count(), data.pixel_mean, data.pixel_std);
  std::printf("train   %d epoch%s x %d steps, batch %d, SGD lr %g momentum %g, seed %llu; %s\n", args.epochs,
              args.epochs == 1 ? "" : "s", steps, args.batch_size, static_cast<double>(args.lr),
              static_cast<double>(args.momentum), static_cast<unsigned long long>(args.seed), threading.c_str());
  std::printf("        (progress: nn = normality norm, bn = batch norm)\n\n");

  std::mt19937_64 order_rng(args.seed ^ 0x5eedda7aULL);  // the data order, shared by both models
  std::vector<int> order(static_cast<std::size_t>(train_count));
  std::iota(order.begin(), order.end(), 0);
  std::vector<fm::EpochRecord> records;
  fm::ProgressLine progress;
  for (int epoch = 1; epoch <= args.epochs; ++epoch) {
    for (int i = train_count - 1; i > 0; --i)  // Fisher-Yates, with mt19937_64's fixed sequence
      std::swap(order[static_cast<std::size_t>(i)], order[order_rng() % static_cast<std::uint64_t>(i + 1)]);
    records.push_back(train_epoch(args, epoch, data, order, models, progress));
    print_epoch(records.back(), args.epochs);
  }

  Lines line;
  accuracy_table(line, args, records);
  line("");
  const Probe probes[2] = {probe(normal_norm, data.test), probe(batch_norm, data.test)};
  moments_table(line, probes, data.test.count(), out_dir / "feature_moments.csv");
  const PooledDistribution pooled = pooled_distribution(probes, args.probe_layer);
  line("");
  line("layer %d pooled normalized features: quantile at Phi(z) for z = -3, -2, 2, 3 (a Gaussian gives z)",
       args.probe_layer);
  for (int m = 0; m < 2; ++m)
    line("  %-15s %7.3f %7.3f %7.3f %7.3f", model_names[m], pooled.at(m, -3), pooled.at(m, -2), pooled.at(m, 2),
         pooled.at(m, 3));
  line("");
  lambda_table(line, probes[0], args.batch_size);
  const std::string summary = line.text.str();
  std::printf("\n%s", summary.c_str());

  const std::string plot_status = write_report(args, out_dir, command, records, pooled, summary);
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
