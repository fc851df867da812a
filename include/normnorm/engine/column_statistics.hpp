#pragma once
// group_statistics (statistics.hpp) for groups that are columns of row-major memory:
// up to one batch of adjacent columns at a time, each lane its own group, with the
// per-group parameters (centre, standardizer) per lane. Bit-identical to
// group_statistics on the transposed groups (column_reduction.hpp says why the sums
// are; the per-lane arithmetic is the same expressions).
//
// The one-step estimators only: the searches run on a transposed copy (placement.hpp).

#include <algorithm>
#include <array>
#include <cmath>

#include "normnorm/engine/column_reduction.hpp"
#include "normnorm/engine/statistics.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// Statistics of the `width` columns whose first value is at `first_offset`
// (group_statistics' passes, in its order).
template <class T, class Arch>
inline void column_statistics(const T* x, const Columns& columns, index_t first_offset, index_t width,
                              const Options& options, GroupStatistics* stats) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  const double group_size = static_cast<double>(columns.group_size());
  for (index_t j = 0; j < width; ++j) stats[j] = GroupStatistics{};

  std::array<double, 1> sum[lanes] = {};
  reduce_columns<T, Arch, 1>(
      columns, first_offset, width,
      [&](auto zero, index_t offset, index_t, auto& sums) {
        sums.add(0, load_lanes<decltype(zero)>(x + offset, width));
      },
      sum);
  for (index_t j = 0; j < width; ++j) stats[j].finite = std::isfinite(sum[j][0]);

  if (options.standardize) {
    std::array<double, 2> deviations[lanes] = {};
    LaneValues<T, Arch> centre;
    const auto deviations_about = [&](std::array<double, 2>* out) {
      reduce_columns<T, Arch, 2>(
          columns, first_offset, width,
          [&](auto zero, index_t offset, index_t column, auto& sums) {
            using V = decltype(zero);
            const V centred = load_lanes<V>(x + offset, width) - centre.template at<V>(column);
            sums.add(0, centred * centred);
            sums.add(1, centred);
          },
          out);
    };
    for (index_t j = 0; j < width; ++j) centre.values[j] = T(sum[j][0] / group_size);
    deviations_about(deviations);
    // group_statistics centres again, once, where the first mean was off by more than the
    // spread: here the columns that need it take the second pass's sums, the others keep theirs.
    bool recentre = false;
    bool needs[lanes] = {};
    for (index_t j = 0; j < width; ++j) {
      const double correction = deviations[j][1] / group_size, mean_square = deviations[j][0] / group_size;
      needs[j] = std::isfinite(sum[j][0]) && std::isfinite(correction) &&
                 !(std::isfinite(mean_square) && correction * correction <= 0.5 * mean_square);
      recentre = recentre || needs[j];
    }
    if (recentre) {
      std::array<double, 2> again[lanes] = {};
      for (index_t j = 0; j < width; ++j)
        if (needs[j]) centre.values[j] = T(static_cast<double>(centre.values[j]) + deviations[j][1] / group_size);
      deviations_about(again);
      for (index_t j = 0; j < width; ++j)
        if (needs[j]) deviations[j] = again[j];
    }
    for (index_t j = 0; j < width; ++j)
      finish_moments(static_cast<double>(centre.values[j]), deviations[j][0], deviations[j][1], group_size, options.eps,
                     stats[j]);
  }

  if (options.power_transform) {
    LaneValues<T, Arch> mean_hi, mean_lo, rstd;
    for (index_t j = 0; j < width; ++j) {
      const auto standardize = Standardizer<T>::from(stats[j].mean, stats[j].rstd);
      mean_hi.values[j] = standardize.mean_hi;
      mean_lo.values[j] = standardize.mean_lo;
      rstd.values[j] = standardize.rstd;
    }
    ExtremesOfH<T, Arch, lanes> extremes;  // lane j and tail j: channel j
    std::array<double, 5> sums[lanes] = {};
    reduce_columns<T, Arch, 5>(
        columns, first_offset, width,
        [&](auto zero, index_t offset, index_t column, auto& acc) {
          using V = decltype(zero);
          const V value = load_lanes<V>(x + offset, width);
          const V h = ((value - mean_hi.template at<V>(column)) - mean_lo.template at<V>(column)) *
                      rstd.template at<V>(column);  // Standardizer's expression, per lane
          extremes.track(h, column);
          add_lambda_terms<T>(acc, h);
        },
        sums);
    extremes.of_columns(width, stats);
    for (index_t j = 0; j < width; ++j) {
      GroupStatistics& s = stats[j];
      estimate_lambda(options, sums[j][0], sums[j][1], sums[j][2], sums[j][3], sums[j][4], group_size, s);
      for (double v : sums[j]) s.finite = s.finite && std::isfinite(v);
    }
  }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
