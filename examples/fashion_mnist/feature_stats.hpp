#pragma once
// How Gaussian a layer's features are: per-feature skewness and excess kurtosis, and the
// pooled distribution of the features (each standardized over the test set) as a
// histogram and as normal Q-Q points.

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Core>

namespace fashion_mnist {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct FeatureMoments {
  std::vector<double> skewness, excess_kurtosis;  // one per (non-constant) feature
  int constant_features = 0;                      // skipped: no spread
};

// Summary of one per-feature statistic over the features.
struct Summary {
  double median = 0, mean_abs = 0, max_abs = 0;
};

inline Summary summarize(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  for (double v : values) {
    s.mean_abs += std::fabs(v) / static_cast<double>(values.size());
    s.max_abs = std::max(s.max_abs, std::fabs(v));
  }
  const std::size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle), values.end());
  s.median = values[middle];
  return s;
}

// Skewness m3 / m2^1.5 and excess kurtosis m4 / m2^2 - 3 of each column of `features`
// (rows are samples), with central moments m_k over the rows, in double (two passes).
inline FeatureMoments feature_moments(const Matrix& features) {
  FeatureMoments result;
  const Eigen::Index n = features.rows();
  for (Eigen::Index j = 0; j < features.cols(); ++j) {
    double mean = 0;
    for (Eigen::Index i = 0; i < n; ++i) mean += features(i, j);
    mean /= static_cast<double>(n);
    double m2 = 0, m3 = 0, m4 = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      const double d = features(i, j) - mean, d2 = d * d;
      m2 += d2, m3 += d2 * d, m4 += d2 * d2;
    }
    m2 /= static_cast<double>(n), m3 /= static_cast<double>(n), m4 /= static_cast<double>(n);
    if (m2 <= 1e-12 * (1.0 + mean * mean)) {
      ++result.constant_features;
      continue;
    }
    result.skewness.push_back(m3 / std::pow(m2, 1.5));
    result.excess_kurtosis.push_back(m4 / (m2 * m2) - 3.0);
  }
  return result;
}

// Every value of every non-constant feature, standardized by that feature's own mean and
// standard deviation: the distribution's shape with each feature's location and scale
// removed. Sorted, for quantiles.
inline std::vector<float> pooled_standardized(const Matrix& features) {
  std::vector<float> pooled;
  pooled.reserve(static_cast<std::size_t>(features.size()));
  const Eigen::Index n = features.rows();
  for (Eigen::Index j = 0; j < features.cols(); ++j) {
    double mean = 0, m2 = 0;
    for (Eigen::Index i = 0; i < n; ++i) mean += features(i, j);
    mean /= static_cast<double>(n);
    for (Eigen::Index i = 0; i < n; ++i) m2 += (features(i, j) - mean) * (features(i, j) - mean);
    const double sd = std::sqrt(m2 / static_cast<double>(n));
    if (sd <= 1e-6 * (1.0 + std::fabs(mean))) continue;
    for (Eigen::Index i = 0; i < n; ++i) pooled.push_back(static_cast<float>((features(i, j) - mean) / sd));
  }
  std::sort(pooled.begin(), pooled.end());
  return pooled;
}

// Density histogram of sorted values over [low, high) in `bins` equal bins (values
// outside count in the total but in no bin, so the bars integrate to the fraction inside).
inline std::vector<double> density_histogram(const std::vector<float>& sorted, double low, double high, int bins) {
  std::vector<double> density(static_cast<std::size_t>(bins), 0.0);
  if (sorted.empty()) return density;
  const double width = (high - low) / bins;
  for (float v : sorted) {
    const double position = (v - low) / width;
    if (position >= 0 && position < bins) density[static_cast<std::size_t>(position)] += 1.0;
  }
  for (double& d : density) d /= static_cast<double>(sorted.size()) * width;
  return density;
}

inline double standard_normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// The sample quantile at probability p (0 < p < 1) of sorted values, interpolating
// linearly between order statistics.
inline double quantile(const std::vector<float>& sorted, double p) {
  if (sorted.empty()) return NAN;
  const double position = p * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(position);
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return (1.0 - fraction) * sorted[below] + fraction * sorted[above];
}

}  // namespace fashion_mnist
