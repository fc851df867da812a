#pragma once
// Per-group statistics of a forward: mean, variance, and the one-step lambda.
// Reads only, so a training call can check every group before it writes.

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "normnorm/engine/standardize.hpp"
#include "normnorm/engine/traversal.hpp"
#include "normnorm/estimators/registry.hpp"
#include "normnorm/math/yeo_johnson.hpp"
#include "normnorm/options.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct GroupStatistics {
  double mean = 0, var = 1, rstd = 1;
  double lambda = 1, mean_hd = 0, mean_d = 0, g1 = 0, g2 = 0;
  double max_h = 0, max_minus_h = 0;  // largest h >= 0 and largest -h over h < 0 (0 when none)
  bool finite = true;
  bool zero_scale = false;  // var + eps == 0: the group cannot be standardized
};

// Whether y = s expm1(et L) / et on either side of a group, or a sum of M such
// values (the spread), would leave T's range: log y ~ et L - log et must stay below
// log(max T / (2 M)). max_h and max_minus_h are the group's largest h and -h (0 when
// none). A non-finite lambda counts as overflowing.
template <class T>
inline bool transform_overflows(double lambda, double max_h, double max_minus_h, double eps, double group_size) {
  if (!std::isfinite(lambda)) return true;
  const double limit = std::log(static_cast<double>(std::numeric_limits<T>::max()) / (2.0 * group_size));
  const double sqrt_eps = std::sqrt(eps);
  auto side_overflows = [&](double eta, double largest) {
    const double exponent = eta + (eta >= 0 ? sqrt_eps : -sqrt_eps);
    const double t = exponent * std::log1p(largest);
    return exponent > 0 && t > 1 && t - std::log(exponent) > limit;
  };
  return side_overflows(lambda, max_h) || side_overflows(2.0 - lambda, max_minus_h);
}

// The one-step estimate's five per-element terms of h into sums 0-4 (estimate_lambda's order).
template <class T, class V, class Sums>
NORMNORM_ALWAYS_INLINE void add_lambda_terms(Sums& sums, const V& h) {
  const auto terms = math::lambda_terms<V, T>(h);
  sums.add(0, terms.hd);
  sums.add(1, terms.sL);
  sums.add(2, terms.d);
  sums.add(3, terms.dd);
  sums.add(4, terms.he);
}

// The largest h and -h seen (0 when none), for transform_overflows(): per lane for the
// batches, per tail for the scalar values. A group has one tail; a block of channels
// walked as columns one per channel (lane j and tail j are channel j's).
template <class T, class Arch, index_t Tails = 1>
struct ExtremesOfH {
  using Wide = math::lane_batch<T, Arch>;
  Wide wide_max_h = Wide(T(0)), wide_max_minus_h = Wide(T(0));
  T tail_max_h[Tails] = {}, tail_max_minus_h[Tails] = {};

  template <class V>
  NORMNORM_ALWAYS_INLINE void track(const V& h, index_t tail = 0) {
    if constexpr (std::is_same_v<V, T>) {
      tail_max_h[tail] = std::max(tail_max_h[tail], h);
      tail_max_minus_h[tail] = std::max(tail_max_minus_h[tail], -h);
    } else {
      wide_max_h = xsimd::max(wide_max_h, h);
      wide_max_minus_h = xsimd::max(wide_max_minus_h, -h);
    }
  }
  // Over every lane and the one tail (a group).
  void of_group(GroupStatistics& stats) const {
    stats.max_h = static_cast<double>(std::max(math::lane_max(wide_max_h), tail_max_h[0]));
    stats.max_minus_h = static_cast<double>(std::max(math::lane_max(wide_max_minus_h), tail_max_minus_h[0]));
  }
  // Lane j and tail j (channel j of a block of columns).
  void of_columns(index_t width, GroupStatistics* stats) const {
    alignas(64) T lane_max_h[math::lane_traits<Wide>::width], lane_max_minus_h[math::lane_traits<Wide>::width];
    math::store(lane_max_h, wide_max_h);
    math::store(lane_max_minus_h, wide_max_minus_h);
    for (index_t j = 0; j < width; ++j) {
      stats[j].max_h = static_cast<double>(std::max(lane_max_h[j], tail_max_h[j]));
      stats[j].max_minus_h = static_cast<double>(std::max(lane_max_minus_h[j], tail_max_minus_h[j]));
    }
  }
};

// Mean, variance and rstd from a centre and the sums of (x - centre)^2 and (x - centre)
// (the corrected two-pass algorithm, group_statistics). Squares that overflow make the
// variance infinite (rstd 0), spelled out: inf - inf would be NaN.
NORMNORM_OUT_OF_LINE void finish_moments(double centre, double sum_squares, double sum_deviations, double group_size,
                                         double eps, GroupStatistics& stats) {
  const double correction = sum_deviations / group_size;
  stats.mean = centre + correction;
  const double spread = sum_squares / group_size;
  stats.var = std::isfinite(spread) ? std::max(0.0, spread - correction * correction) : spread;
  stats.rstd = 1.0 / std::sqrt(stats.var + eps);
  stats.finite = stats.finite && std::isfinite(stats.var);
  stats.zero_scale = stats.var + eps == 0.0;
}

// Lambda from the group means of the per-element terms (docs/math.md):
//   A = mean(h d), S = mean(s L), g1 = A - S,
//   D = mean(d), B = mean(h e) + mean((d - D)^2), g2 = B - 2 A^2,
// then lambda from g1 and g2 by the options' estimator (estimators/).
NORMNORM_OUT_OF_LINE void estimate_lambda(const Options& options, double sum_hd, double sum_sL, double sum_d, double sum_dd,
                            double sum_he, double group_size, GroupStatistics& stats) {
  const double A = sum_hd / group_size;
  const double S = sum_sL / group_size;
  const double D = sum_d / group_size;
  const double variance_d = std::max(0.0, sum_dd / group_size - D * D);
  const double B = sum_he / group_size + variance_d;
  stats.mean_hd = A;
  stats.mean_d = D;
  stats.g1 = A - S;
  stats.g2 = B - 2.0 * A * A;
  stats.lambda = estimators::lambda_from(options, {stats.g1, stats.g2});
}

template <class T, class Arch>
inline GroupStatistics group_statistics(const Layout& layout, const Options& options, const T* x, index_t group) {
  using math::load;
  GroupStatistics stats;
  const double group_size = static_cast<double>(layout.group_size());

  // The sum is taken even without standardization: it is how non-finite input is detected.
  const auto sum = reduce_group<T, Arch, 1>(layout, group, [&](auto zero, index_t p, auto& sums) {
    sums.add(0, load<decltype(zero)>(x + p));
  });
  stats.finite = std::isfinite(sum[0]);
  if (options.standardize) {
    // Two passes, mean then deviations, with the deviations' own sum as a correction of
    // the mean (the corrected two-pass algorithm): the first pass's partial sums are kept
    // in T, so with a large offset (x ~ 1e6 in float) its mean can be off by units of the
    // data's spread; sum(x - m) recovers that, and the variance about the corrected mean
    // is sum((x - m)^2) / M - (sum(x - m) / M)^2, exactly. No extra pass for ordinary data.
    const auto deviations_about = [&](T centre) {
      return reduce_group<T, Arch, 2>(layout, group, [&](auto zero, index_t p, auto& sums) {
        using V = decltype(zero);
        const V centred = load<V>(x + p) - V(centre);
        sums.add(0, centred * centred);
        sums.add(1, centred);
      });
    };
    T mean = T(sum[0] / group_size);
    auto deviations = deviations_about(mean);
    const double correction = deviations[1] / group_size;
    // When the first mean is off by more than the spread (near-constant values far from
    // zero: the lane sums round differently from a sequential sum), the formula cancels,
    // and beyond sqrt(max(T)) the squares overflow although the values are all but equal.
    // Then centre again, once, on the corrected mean. Ordinary data never take this pass.
    const double mean_square = deviations[0] / group_size;
    if (std::isfinite(sum[0]) && std::isfinite(correction) &&
        !(std::isfinite(mean_square) && correction * correction <= 0.5 * mean_square)) {
      mean = T(static_cast<double>(mean) + correction);
      deviations = deviations_about(mean);
    }
    finish_moments(static_cast<double>(mean), deviations[0], deviations[1], group_size, options.eps, stats);
  }

  if (options.power_transform) {
    const auto standardize = Standardizer<T>::from(stats.mean, stats.rstd);
    // The extremes of h on each side, for transform_overflows(), ride along in the pass.
    ExtremesOfH<T, Arch> extremes;
    auto standardized_tracking_extremes = [&](auto value) {
      const auto h = standardize(value);
      extremes.track(h);
      return h;
    };
    if (estimators::reads_group_values(options)) {
      // Searching estimators (newton(k), exact) run afterwards, over all groups at once: this pass only
      // takes the extremes (and sum(h), for non-finite input when standardize is off).
      const auto sums = reduce_group<T, Arch, 1>(layout, group, [&](auto zero, index_t p, auto& acc) {
        using V = decltype(zero);
        acc.add(0, standardized_tracking_extremes(load<V>(x + p)));
      });
      stats.finite = stats.finite && std::isfinite(sums[0]);
    } else {
      // The paper's one-step estimate.
      const auto sums = reduce_group<T, Arch, 5>(layout, group, [&](auto zero, index_t p, auto& acc) {
        using V = decltype(zero);
        add_lambda_terms<T>(acc, standardized_tracking_extremes(load<V>(x + p)));
      });
      estimate_lambda(options, sums[0], sums[1], sums[2], sums[3], sums[4], group_size, stats);
      // Non-finite input shows up in these sums even when standardize is off.
      for (double s : sums) stats.finite = stats.finite && std::isfinite(s);
    }
    extremes.of_group(stats);
  }
  return stats;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
