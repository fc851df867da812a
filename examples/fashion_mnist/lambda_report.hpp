#pragma once
// How far the paper's one-step lambda is from the maximum-likelihood one on real
// features: each hidden layer's norm input (test set, the trained normality-norm
// model), cut into training-sized batches, run through a BatchNormalNorm1d forward
// with each estimator (docs/lambda-search.md); per (batch, feature) lambda.

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <normnorm/normnorm.hpp>

#include "feature_stats.hpp"

namespace fashion_mnist {

// The lambda of every (batch, feature) of `features` (rows are samples) under `options`.
inline std::vector<double> batch_lambdas(const Matrix& features, int batch_size, normnorm::Options options) {
  options.noise_train = 0;
  options.track_running_stats = false;
  const auto channels = static_cast<normnorm::index_t>(features.cols());
  const normnorm::LayerConfig config = normnorm::LayerConfig::batch_normal_norm_1d(channels, options);
  std::vector<float> out(static_cast<std::size_t>(batch_size * features.cols()));
  std::vector<float> weight(static_cast<std::size_t>(channels), 1.0f), bias(static_cast<std::size_t>(channels), 0.0f);
  normnorm::SavedContext<float> context;
  std::vector<double> lambdas;
  for (int start = 0; start + batch_size <= features.rows(); start += batch_size) {
    normnorm::ForwardArgs<float> args;
    args.input = features.data() + static_cast<std::ptrdiff_t>(start) * features.cols();
    args.shape = normnorm::Shape{batch_size, channels};
    args.output = out.data();
    args.weight = {weight.data(), channels};
    args.bias = {bias.data(), channels};
    const normnorm::Status status = normnorm::try_forward(config, normnorm::Mode::train, args, context);
    if (!status.ok()) throw std::runtime_error(status.message());
    for (double lambda : context.lambda)
      if (std::isfinite(lambda)) lambdas.push_back(lambda);
  }
  return lambdas;
}

struct LambdaGap {
  double median = 0, p90 = 0, max = 0;
};

// |a - b| over matching entries: median, 90th percentile, largest.
inline LambdaGap lambda_gap(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> gaps;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) gaps.push_back(std::fabs(a[i] - b[i]));
  LambdaGap gap;
  if (gaps.empty()) return gap;
  std::sort(gaps.begin(), gaps.end());
  gap.median = gaps[gaps.size() / 2];
  gap.p90 = gaps[gaps.size() * 9 / 10];
  gap.max = gaps.back();
  return gap;
}

}  // namespace fashion_mnist
