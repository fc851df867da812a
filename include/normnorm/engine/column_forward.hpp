#pragma once
// The forward of groups that are columns (engine/columns.hpp), in place, one
// group per lane: forward.hpp's phases with each group's per-element
// work and sums as the contiguous group's (column_reduction.hpp), so the outputs,
// the context and the running statistics are the same bits as on a transposed copy.
// The noise comes in memory order, or as Philox drawn block by block (column_noise.hpp).

#include <algorithm>
#include <cmath>

#include "normnorm/engine/column_noise.hpp"
#include "normnorm/engine/column_reduction.hpp"
#include "normnorm/engine/column_statistics.hpp"
#include "normnorm/engine/forward.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace detail {

// The per-group parameters of a block's groups: per group for the scalar rows,
// per lane for the batched ones.
template <class T, class Arch>
struct ColumnTransforms {
  static constexpr index_t lanes = column_lanes<T, Arch>;
  using B = math::lane_batch<T, Arch>;
  Standardizer<T> standardize[lanes];
  math::PowerTransform<T> transform[lanes];
  Standardizer<B> standardize_lanes;
  math::PowerTransformLanes<B> transform_lanes;

  ColumnTransforms(const SavedContext<T>& ctx, const Options& options, const ColumnBlock& block) {
    const index_t width = block.width;
    LaneValues<T, Arch> mean_hi, mean_lo, rstd;
    for (index_t j = 0; j < width; ++j) {
      const auto g = static_cast<std::size_t>(block.group + j);
      standardize[j] = Standardizer<T>::from(ctx.mean[g], ctx.rstd[g]);
      transform[j] = math::PowerTransform<T>::make(ctx.lambda[g], std::sqrt(options.eps), options.power_transform);
      mean_hi.values[j] = standardize[j].mean_hi;
      mean_lo.values[j] = standardize[j].mean_lo;
      rstd.values[j] = standardize[j].rstd;
    }
    if constexpr (math::is_simd<Arch>) {
      standardize_lanes.mean_hi = mean_hi.template at<B>(0);
      standardize_lanes.mean_lo = mean_lo.template at<B>(0);
      standardize_lanes.rstd = rstd.template at<B>(0);
      transform_lanes = math::PowerTransformLanes<B>::of(transform, width);
    }
  }
  // h of x, for a batch (every lane its channel's) or channel `column`'s scalar.
  template <class V>
  NORMNORM_ALWAYS_INLINE V standardized(const V& x, index_t column) const {
    if constexpr (std::is_arithmetic_v<V>) return standardize[column](x);
    else return standardize_lanes(x);
  }
  template <class V>
  NORMNORM_ALWAYS_INLINE V transformed(const V& h, index_t column) const {
    if constexpr (std::is_arithmetic_v<V>) return math::power_transform(h, transform[column]);
    else return math::power_transform(h, transform_lanes);
  }
};

// Each column's affine parameter (its channel's) of a block, or `fallback` without one.
template <class T, class Arch>
inline LaneValues<T, Arch> affine_lanes(const T* params, const ColumnBlock& block, T fallback) {
  LaneValues<T, Arch> lanes;
  for (index_t j = 0; j < block.width; ++j) lanes.values[j] = params ? params[block.channel + j] : fallback;
  return lanes;
}

// out = gamma (y + sigma n) + beta over the block; y read from out (SourceIsY) or
// transformed from x. As write_affine: the noise only where sigma != 0.
template <class T, class Arch, bool SourceIsY>
inline void write_affine_columns(const ForwardRequest<T>& rq, const ColumnTransforms<T, Arch>& transforms,
                                 const ColumnBlock& block, const LaneValues<T, Arch>& sigma, bool any_noise,
                                 const BlockNoise<T, Arch>& noise) {
  const Columns& columns = rq.columns;
  const index_t width = block.width;
  const auto gamma = affine_lanes<T, Arch>(rq.weight, block, T(1));
  const auto beta = affine_lanes<T, Arch>(rq.bias, block, T(0));
  for (index_t segment = 0; segment < columns.segments; ++segment)
    for_each_row<T, Arch>(columns, block.offset, width, segment, 0, columns.rows,
                          [&](auto zero, index_t offset, index_t column, index_t position) {
                            using V = decltype(zero);
                            V z;
                            if constexpr (SourceIsY) {
                              z = load_lanes<V>(rq.out + offset, width);
                            } else {
                              const V x = load_lanes<V>(rq.x + offset, width);
                              z = transforms.transformed(transforms.standardized(x, column), column);
                            }
                            if (any_noise) {
                              const V s = sigma.template at<V>(column);
                              z = math::where(s != V(T(0)), z + math::rounded_term(s * noise.template at<V>(offset, position, column)), z);
                            }
                            store_lanes(rq.out + offset,
                                        math::rounded_term(gamma.template at<V>(column) * z) + beta.template at<V>(column),
                                        width);
                          });
}

// Phase 2 for a block (write_group's passes); `noise_buffer`: the thread's block of
// draws (column_noise.hpp).
template <class T, class Arch>
inline void write_columns(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const ForwardPlan<T>& plan,
                          const ColumnBlock& block, double factor, T* noise_buffer) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  const Columns& columns = rq.columns;
  const index_t width = block.width;
  const double group_size = static_cast<double>(columns.group_size());
  const ColumnTransforms<T, Arch> transforms(ctx, rq.options, block);
  LaneValues<T, Arch> sigma;
  double spread[lanes] = {};
  if (!plan.need_spread) {
    write_affine_columns<T, Arch, false>(rq, transforms, block, sigma, false, BlockNoise<T, Arch>{});
  } else {
    std::array<double, 1> sum_y[lanes] = {}, deviation[lanes] = {};
    reduce_columns<T, Arch, 1>(
        columns, block.offset, width,
        [&](auto zero, index_t offset, index_t column, auto& sums) {
          using V = decltype(zero);
          const V y = transforms.transformed(transforms.standardized(load_lanes<V>(rq.x + offset, width), column), column);
          store_lanes(rq.out + offset, y, width);
          sums.add(0, y);
        },
        sum_y);
    LaneValues<T, Arch> mean_y;
    for (index_t j = 0; j < width; ++j) mean_y.values[j] = T(sum_y[j][0] / group_size);
    reduce_columns<T, Arch, 1>(
        columns, block.offset, width,
        [&](auto zero, index_t offset, index_t column, auto& sums) {
          using V = decltype(zero);
          sums.add(0, math::abs(load_lanes<V>(rq.out + offset, width) - mean_y.template at<V>(column)));
        },
        deviation);
    bool any_noise = false;
    for (index_t j = 0; j < width; ++j) {
      spread[j] = deviation[j][0] / group_size;
      const double s = plan.noisy ? rq.options.noise_train * spread[j] : 0.0;
      ctx.noise_scale[static_cast<std::size_t>(block.group + j)] = s;
      sigma.values[j] = T(s);
      any_noise = any_noise || sigma.values[j] != T(0);
    }
    BlockNoise<T, Arch> noise;
    if (any_noise) noise = block_noise<T, Arch>(rq.noise, rq.global.noise_offset, columns, block, noise_buffer);
    write_affine_columns<T, Arch, true>(rq, transforms, block, sigma, any_noise, noise);
  }
  if (plan.update_running)  // batch forms: group = channel
    for (index_t j = 0; j < width; ++j) update_running_group(rq, ctx, block.group + j, spread[j], factor, group_size);
}

}  // namespace detail

template <class T, class Arch>
inline index_t forward_columns(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  const Columns& columns = rq.columns;
  const ForwardPlan<T> plan = ForwardPlan<T>::of(rq);
  // Work units: each plane's blocks of up to `lanes` columns.
  const index_t blocks = columns.blocks(lanes);
  const auto block_of = [&](index_t b) { return ColumnBlock::numbered(columns, lanes, b); };
  const double block_values = static_cast<double>(columns.group_size() * lanes);
  const double block_bytes = block_values * sizeof(T);
  detail::start_forward(rq, plan, ctx);

  // Phase 1: statistics of every group, before any write.
  parallel_for(workers, blocks, block_bytes, 20.0 * block_values, [&](index_t b) {
    const ColumnBlock block = block_of(b);
    GroupStatistics stats[lanes];
    if (plan.use_running) {
      for (index_t j = 0; j < block.width; ++j) stats[j] = detail::statistics_for<T, Arch>(rq, true, block.group + j);
    } else {
      column_statistics<T, Arch>(rq.x, columns, block.offset, block.width, rq.options, stats);
    }
    for (index_t j = 0; j < block.width; ++j) detail::record_group<T>(rq, plan, stats[j], block.group + j, ctx);
  });
  if (plan.training)
    for (index_t g = 0; g < columns.groups(); ++g)
      if (ctx.scratch.verdicts[g] != GroupVerdict::usable) return g;

  // Nothing below can fail.
  const double factor = detail::running_factor(rq, plan);
  const index_t noise_stride = block_noise_values<T>(columns);  // each thread's block of draws
  parallel_for(workers, blocks, 3 * block_bytes, 60.0 * block_values, [&](index_t b) {
    T* noise_buffer = ctx.scratch.block_noise ? ctx.scratch.block_noise + workers.slot() * noise_stride : nullptr;
    detail::write_columns<T, Arch>(rq, ctx, plan, block_of(b), factor, noise_buffer);
  });
  ctx.valid = true;
  return no_failed_group;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
