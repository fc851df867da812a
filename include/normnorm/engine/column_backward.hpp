#pragma once
// The backward of groups that are columns (engine/columns.hpp), in place, one
// group per lane: backward.hpp's two passes with the contiguous group's
// per-element work and sums (column_reduction.hpp), and its per-channel
// accumulators added to in its order, so grad_input, grad_weight and grad_bias are
// the same bits as on a transposed copy. The one-step estimators only
// (placement.hpp keeps the searches on the copy).

#include <algorithm>
#include <cmath>

#include "normnorm/engine/backward.hpp"
#include "normnorm/engine/column_forward.hpp"
#include "normnorm/engine/column_noise.hpp"
#include "normnorm/engine/column_reduction.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace detail {

// Lambda's sensitivity constants of a block's groups, per group and per lane.
template <class T, class Arch>
struct ColumnSensitivities {
  static constexpr index_t lanes = column_lanes<T, Arch>;
  using B = math::lane_batch<T, Arch>;
  math::LambdaSensitivity<T> of[lanes];
  math::LambdaSensitivity<B> of_lanes;

  ColumnSensitivities(const SavedContext<T>& ctx, const Options& options, const ColumnBlock& block,
                      bool lambda_has_gradient) {
    LaneValues<T, Arch> k_g1, k_g2, A, D;
    for (index_t j = 0; j < block.width; ++j) {
      of[j] = sensitivity_of(ctx, options, block.group + j, lambda_has_gradient);
      k_g1.values[j] = of[j].k_g1;
      k_g2.values[j] = of[j].k_g2;
      A.values[j] = of[j].A;
      D.values[j] = of[j].D;
    }
    if constexpr (math::is_simd<Arch>)
      of_lanes = {k_g1.template at<B>(0), k_g2.template at<B>(0), A.template at<B>(0), D.template at<B>(0)};
  }
  template <class V>
  NORMNORM_ALWAYS_INLINE V at(const math::Magnitude<V>& m, index_t column) const {
    if constexpr (std::is_arithmetic_v<V>) return math::lambda_sensitivity(m, of[column]);
    else return math::lambda_sensitivity(m, of_lanes);
  }
};

template <class T, class Arch>
NORMNORM_ALWAYS_INLINE math::TransformDerivatives<T> derivatives_at(const ColumnTransforms<T, Arch>& transforms,
                                                                   const math::Magnitude<T>& m, index_t column) {
  return math::power_transform_derivatives(m, transforms.transform[column]);
}
template <class T, class Arch, class B>
NORMNORM_ALWAYS_INLINE math::TransformDerivatives<B> derivatives_at(const ColumnTransforms<T, Arch>& transforms,
                                                                   const math::Magnitude<B>& m, index_t) {
  return math::power_transform_derivatives(m, transforms.transform_lanes);
}

// Both passes for a block (backward_pass's, with its chunks of backward_chunk values
// per run). Pass 1 adds each chunk's sum g and sum g z of column j into *sum_g[j] and
// *sum_gz[j] (its channel's accumulator), as backward_pass does. With `partials`
// (2 x lanes x group size values) pass 1 keeps each element's u psi_h and d lambda for
// pass 2, as backward_group does for groups of up to max_partial_group values.
template <class T, class Arch>
inline void backward_column_block(const BackwardRequest<T>& rq, const SavedContext<T>& ctx, const ColumnBlock& block,
                                  double* const* sum_g, double* const* sum_gz, T* partials, T* noise_buffer) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  const Columns& columns = rq.columns;
  const index_t width = block.width;
  const Options& options = rq.options;
  const double group_size = static_cast<double>(columns.group_size());
  const bool lambda_has_gradient = ctx.batch_statistics && options.power_transform;
  const bool statistics_have_gradient = ctx.batch_statistics && options.standardize;
  const ColumnTransforms<T, Arch> transforms(ctx, options, block);
  const ColumnSensitivities<T, Arch> sensitivity(ctx, options, block, lambda_has_gradient);
  const auto gamma = affine_lanes<T, Arch>(rq.weight, block, T(1));
  // The noise only reaches grad_weight (through z); without it, skip the draws.
  LaneValues<T, Arch> sigma;
  bool any_noise = false;
  for (index_t j = 0; j < width; ++j) {
    sigma.values[j] = rq.grad_weight ? T(ctx.noise_scale[static_cast<std::size_t>(block.group + j)]) : T(0);
    any_noise = any_noise || sigma.values[j] != T(0);
  }
  BlockNoise<T, Arch> noise;  // column_noise.hpp
  if (any_noise) noise = block_noise<T, Arch>(rq.noise, rq.global.noise_offset, columns, block, noise_buffer);
  const index_t stride = lanes * columns.group_size();
  T* const partial_psi = partials;
  T* const partial_dl = partials ? partials + stride : nullptr;

  // Pass 1: the five group sums (Lambda, sum u psi_h, sum u psi_h h, sum dlambda,
  // sum dlambda h), then the channel's sum g and sum g z, added to its accumulator.
  std::array<double, 7> totals[lanes] = {};
  for (index_t j = 0; j < width; ++j) {
    totals[j][5] = *sum_g[j];
    totals[j][6] = *sum_gz[j];
  }
  reduce_columns<T, Arch, 7, backward_chunk>(
      columns, block.offset, width,
      [&](auto zero, index_t offset, index_t column, auto& sums) {
        using V = decltype(zero);
        const V h = transforms.standardized(load_lanes<V>(rq.x + offset, width), column);
        const auto m = math::magnitude_of(h);
        const auto td = derivatives_at(transforms, m, column);
        const V grad = load_lanes<V>(rq.grad_out + offset, width);
        const V u = gamma.template at<V>(column) * grad;
        V z = td.y;
        if (any_noise) {
          const V s = sigma.template at<V>(column);
          z = math::where(s != V(T(0)), z + math::rounded_term(s * noise.template at<V>(offset, sums.position, column)), z);
        }
        const V u_psi_h = u * td.psi_h;
        const index_t kept = sums.position * lanes + column;  // the element's place in the partials
        sums.add(0, u * td.psi_l);
        sums.add(1, u_psi_h);
        sums.add(2, u_psi_h * h);
        if (partials) math::store(partial_psi + kept, u_psi_h);
        if (lambda_has_gradient) {
          const V dl = sensitivity.at(m, column);
          sums.add(3, dl);
          sums.add(4, dl * h);
          if (partials) math::store(partial_dl + kept, dl);
        }
        sums.add(5, grad);
        sums.add(6, grad * z);
      },
      totals);
  for (index_t j = 0; j < width; ++j) {
    *sum_g[j] = totals[j][5];
    *sum_gz[j] = totals[j][6];
  }
  if (!rq.grad_x) return;

  // Pass 2: grad_x.
  LaneValues<T, Arch> lambda_term, centre, slope, rstd;
  for (index_t j = 0; j < width; ++j) {
    const double lambda_weight = totals[j][0] / group_size;  // dlambda_j = lambda_sensitivity_j / M
    double mean_gh = 0.0, mean_gh_h = 0.0;
    if (statistics_have_gradient) {
      mean_gh = (totals[j][1] + lambda_weight * totals[j][3]) / group_size;
      mean_gh_h = (totals[j][2] + lambda_weight * totals[j][4]) / group_size;
    }
    lambda_term.values[j] = T(lambda_weight);
    centre.values[j] = T(mean_gh);
    slope.values[j] = T(mean_gh_h);
    rstd.values[j] = transforms.standardize[j].rstd;
  }
  for (index_t segment = 0; segment < columns.segments; ++segment)
    for_each_row<T, Arch>(columns, block.offset, width, segment, 0, columns.rows,
                          [&](auto zero, index_t offset, index_t column, index_t position) {
                            using V = decltype(zero);
                            const V h = transforms.standardized(load_lanes<V>(rq.x + offset, width), column);
                            V gh;
                            if (partials) {
                              const index_t kept = position * lanes + column;
                              gh = math::load<V>(partial_psi + kept);
                              if (lambda_has_gradient)
                                gh = gh + math::rounded_term(lambda_term.template at<V>(column) * math::load<V>(partial_dl + kept));
                            } else {
                              const auto m = math::magnitude_of(h);
                              const auto td = derivatives_at(transforms, m, column);
                              const V u = gamma.template at<V>(column) * load_lanes<V>(rq.grad_out + offset, width);
                              gh = math::rounded_term(u * td.psi_h);
                              if (lambda_has_gradient)
                                gh = gh + math::rounded_term(lambda_term.template at<V>(column) * sensitivity.at(m, column));
                            }
                            store_lanes(rq.grad_x + offset,
                                        rstd.template at<V>(column) *
                                            (gh - centre.template at<V>(column) -
                                             math::rounded_term(h * slope.template at<V>(column))),
                                        width);
                          });
}

}  // namespace detail

// backward()'s accumulator blocks, as columns: the groups of accumulator block b
// (detail::accumulator_blocks) add into its per-channel sums, each channel's in group
// order. Where a block holds at most one group of each channel (batch forms: one block;
// instance forms with at most C groups per block), each sum gets one group and the work
// units are every plane's blocks of columns; otherwise a unit is an accumulator block,
// its groups walked in order.
template <class T, class Arch>
inline void backward_columns(const BackwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  const Columns& columns = rq.columns;
  const index_t channels = columns.columns, groups = columns.groups();
  const index_t accumulators = detail::accumulator_blocks(rq.layout);
  const index_t groups_per_accumulator = (groups + accumulators - 1) / accumulators;
  double* const sums = ctx.scratch.channel_sums;  // per accumulator block: sum g [C], then sum g z [C]
  for (index_t i = 0; i < 2 * channels * accumulators; ++i) sums[i] = 0.0;
  // Each thread's partials: its slot of lanes x group size pairs (backward_scratch's plan).
  const index_t partial_stride = 2 * max_column_lanes<T> * columns.group_size();
  const index_t noise_stride = block_noise_values<T>(columns);  // each thread's block of draws
  const auto run_block = [&](const ColumnBlock& block) {
    double* sum_g[lanes];
    double* sum_gz[lanes];
    for (index_t j = 0; j < block.width; ++j) {
      double* const accumulator = sums + 2 * channels * ((block.group + j) / groups_per_accumulator);
      sum_g[j] = accumulator + block.channel + j;
      sum_gz[j] = accumulator + channels + block.channel + j;
    }
    T* partials = rq.grad_x && ctx.scratch.partials
                      ? ctx.scratch.partials + static_cast<index_t>(workers.slot()) * partial_stride
                      : nullptr;
    T* noise_buffer = ctx.scratch.block_noise ? ctx.scratch.block_noise + workers.slot() * noise_stride : nullptr;
    detail::backward_column_block<T, Arch>(rq, ctx, block, sum_g, sum_gz, partials, noise_buffer);
  };
  const double block_values = static_cast<double>(columns.group_size() * lanes);
  if (groups_per_accumulator <= channels) {
    parallel_for(workers, columns.blocks(lanes), 3 * block_values * sizeof(T), 60.0 * block_values,
                 [&](index_t b) { run_block(ColumnBlock::numbered(columns, lanes, b)); });
  } else {
    const double group_values = static_cast<double>(columns.group_size() * groups_per_accumulator);
    parallel_for(workers, accumulators, 3 * group_values * sizeof(T), 60.0 * group_values, [&](index_t a) {
      const index_t last = std::min(groups, (a + 1) * groups_per_accumulator);
      for (index_t g = a * groups_per_accumulator; g < last;) {
        const index_t plane = g / channels, first = g % channels;
        const index_t width = std::min({lanes, channels - first, last - g});
        run_block(ColumnBlock::of(columns, plane, first, width));
        g += width;
      }
    });
  }
  detail::write_affine_gradients(rq, sums, channels, accumulators);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
