// normnorm quickstart: Gaussianize a skewed tensor with BatchNormalNorm2d and
// compare it with plain batch normalization (the same layer, power transform off).
//
//   normnorm_quickstart [--seed N]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace {

struct Moments {
  double skewness = 0, excess_kurtosis = 0;
};

// Skewness and excess kurtosis of channel c of an (N, C, H, W) tensor, averaged over channels.
Moments channel_moments(const std::vector<float>& data, long n, long channels, long spatial) {
  Moments average;
  for (long c = 0; c < channels; ++c) {
    double sum = 0, count = 0;
    for (long i = 0; i < n; ++i)
      for (long s = 0; s < spatial; ++s) sum += data[(i * channels + c) * spatial + s], ++count;
    const double mean = sum / count;
    double m2 = 0, m3 = 0, m4 = 0;
    for (long i = 0; i < n; ++i)
      for (long s = 0; s < spatial; ++s) {
        const double d = data[(i * channels + c) * spatial + s] - mean;
        m2 += d * d, m3 += d * d * d, m4 += d * d * d * d;
      }
    m2 /= count, m3 /= count, m4 /= count;
    average.skewness += m3 / std::pow(m2, 1.5) / channels;
    average.excess_kurtosis += (m4 / (m2 * m2) - 3.0) / channels;
  }
  return average;
}

template <class Fn>
double median_ms(int repeats, Fn&& fn) {
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  unsigned seed = 7;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--seed") == 0) seed = static_cast<unsigned>(std::stoul(argv[++i]));

  const long n = 32, channels = 8, height = 16, width = 16, spatial = height * width;
  const normnorm::Shape shape{n, channels, height, width};
  std::mt19937 rng(seed);
  std::lognormal_distribution<float> skewed(0.0f, 0.6f);  // right-skewed, like post-ReLU features
  std::vector<float> input(static_cast<std::size_t>(n * channels * spatial));
  for (float& v : input) v = skewed(rng);

  normnorm::BatchNormalNorm2d<float> normal_norm(channels, normnorm::default_options(normnorm::Form::batch_2d), seed);
  normnorm::Options plain_options = normnorm::default_options(normnorm::Form::batch_2d);
  plain_options.power_transform = false;
  normnorm::BatchNormalNorm2d<float> batch_norm(channels, plain_options);

  std::vector<float> gaussianized(input.size()), standardized(input.size());
  // A few training calls fill the running statistics; then evaluate (no noise).
  for (int step = 0; step < 20; ++step) {
    normal_norm.forward(input.data(), shape, gaussianized.data());
    batch_norm.forward(input.data(), shape, standardized.data());
  }
  normal_norm.eval();
  batch_norm.eval();
  normal_norm.forward(input.data(), shape, gaussianized.data());
  batch_norm.forward(input.data(), shape, standardized.data());

  const Moments before = channel_moments(input, n, channels, spatial);
  const Moments plain = channel_moments(standardized, n, channels, spatial);
  const Moments after = channel_moments(gaussianized, n, channels, spatial);
  std::printf("normnorm %s quickstart: BatchNormalNorm2d on a log-normal tensor %s\n\n", NORMNORM_VERSION_STRING,
              shape.to_string().c_str());
  std::printf("%-34s %10s %16s\n", "", "skewness", "excess kurtosis");
  std::printf("%-34s %10.3f %16.3f\n", "input", before.skewness, before.excess_kurtosis);
  std::printf("%-34s %10.3f %16.3f\n", "batch norm (power_transform off)", plain.skewness, plain.excess_kurtosis);
  std::printf("%-34s %10.3f %16.3f\n\n", "normality norm", after.skewness, after.excess_kurtosis);

  std::printf("running lambda per channel:");
  for (float lambda : normal_norm.running_lambda()) std::printf(" %.3f", lambda);
  std::printf("\n(lambda < 1 compresses the right tail; 1 is the identity)\n\n");

  normal_norm.train();
  batch_norm.train();
  std::vector<float> grad(input.size(), 1.0f), grad_input(input.size());
  const double train_ms = median_ms(21, [&] { normal_norm.forward(input.data(), shape, gaussianized.data()); });
  const double backward_ms =
      median_ms(21, [&] { normal_norm.backward(input.data(), shape, grad.data(), grad_input.data()); });
  const double plain_ms = median_ms(21, [&] { batch_norm.forward(input.data(), shape, standardized.data()); });
  normal_norm.eval();
  const double eval_ms = median_ms(21, [&] { normal_norm.forward(input.data(), shape, gaussianized.data()); });
  std::printf("median of 21 calls, 1 thread: train forward %.3f ms, backward %.3f ms, eval forward %.3f ms;\n"
              "plain batch norm train forward %.3f ms (see bench/ for the comparison with PyTorch)\n",
              train_ms, backward_ms, eval_ms, plain_ms);
  return 0;
}
