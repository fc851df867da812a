#pragma once
// The backward pass of every form: one reducing pass and one writing pass per
// group. The reducing pass computes the transform's derivatives from the input
// and the saved context; it keeps each element's u psi_h and d lambda in a
// per-thread buffer the size of one group (when a group fits in cache, see
// max_partial_group), so the writing pass is multiply-adds with no transcendental.
// Larger groups recompute them in the writing pass.
//
// With u = gamma g (g the gradient reaching the output), per group (docs/math.md):
//   Lambda = sum u psi_l                       (how much the loss cares about lambda)
//   gh_j   = u_j psi_h,j + Lambda dlambda_j    (gradient reaching h_j)
//   grad_x_j = r (gh_j - mean(gh) - h_j mean(gh h))   with statistics from the group,
//   grad_x_j = r u_j psi_h,j                          with running statistics,
// and per affine parameter: grad_bias = sum g, grad_weight = sum g z (z = y + sigma n).
// mean(gh) and mean(gh h) come from the first pass's sums:
//   sum gh = sum u psi_h + Lambda sum dlambda,  sum gh h = sum u psi_h h + Lambda sum dlambda h.

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "normnorm/context.hpp"
#include "normnorm/engine/columns.hpp"
#include "normnorm/engine/noise_draws.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/engine/scratch_plan.hpp"
#include "normnorm/engine/reduction.hpp"
#include "normnorm/engine/standardize.hpp"
#include "normnorm/engine/traversal.hpp"
#include "normnorm/estimators/registry.hpp"
#include "normnorm/math/yeo_johnson.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {

template <class T>
struct BackwardRequest {
  Layout layout;
  Options options;
  const T* x = nullptr;
  const T* grad_out = nullptr;
  const T* weight = nullptr;          // null: no affine (gamma 1)
  NoiseSource<T> noise;  // the forward's draws (engine/placement.hpp reads them from the context)
  T* grad_x = nullptr;                // each may be null: not wanted
  T* grad_weight = nullptr;
  T* grad_bias = nullptr;
  const Eigen::ThreadPoolDevice* device = nullptr;  // null: run on the calling thread
  // Batch forms over a batch split across ranks (docs/distributed.md), as in ForwardRequest.
  const Reducer* reducer = nullptr;
  GlobalBatch global;
  // Active: groups that are the columns of the caller's rows, walked in place
  // (engine/column_backward.hpp); `noise` then as in ForwardRequest.
  Columns columns;
};

// Above: the type the kernel tables pass between translation units. Below: code,
// compiled per instruction set (detail/target_namespace.hpp).
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace detail {

// Lambda's per-element sensitivity constants for a group (zero when lambda is fixed).
template <class T>
inline math::LambdaSensitivity<T> sensitivity_of(const SavedContext<T>& ctx, const Options& options, index_t g,
                                                 bool lambda_has_gradient) {
  math::LambdaSensitivity<T> k;
  if (!lambda_has_gradient) return k;
  const auto gi = static_cast<std::size_t>(g);
  const estimators::Sensitivity of_moments = estimators::sensitivity_from(options, {ctx.g1[gi], ctx.g2[gi]});
  k.k_g1 = T(of_moments.k_g1);
  k.k_g2 = T(of_moments.k_g2);
  k.A = T(ctx.mean_hd[static_cast<std::size_t>(g)]);
  k.D = T(ctx.mean_d[static_cast<std::size_t>(g)]);
  return k;
}

}  // namespace detail

// Pass 1 sums each run of a group in chunks of this many values (one LaneSums each,
// folded into double): column_backward.hpp follows the same chunks.
inline constexpr index_t backward_chunk = 256;

namespace detail {

// Whether the backward reduces over ranks: batch forms with a reducer, statistics from the batch.
template <class T>
inline bool reduces_over_ranks(const BackwardRequest<T>& rq, const SavedContext<T>& ctx) {
  return rq.reducer && rq.layout.groups_span_batch && ctx.batch_statistics;
}

// Pass 1 (Pass == 1) or pass 2 (Pass == 2) for group g. Pass 1 adds the affine
// parameters' sums into sum_g[c] and sum_gz[c] (c = channel), which the caller owns,
// and writes the group's five sums to `totals`; pass 2 reads them back (summed over
// ranks when distributed) and writes grad_x. With `partials` (2 x group_size values),
// pass 1 stores each element's u psi_h and d lambda there, in traversal order, and
// pass 2 reads them instead of recomputing the transform.
template <class T, class Arch, int Pass>
inline void backward_pass(const BackwardRequest<T>& rq, const SavedContext<T>& ctx, const NoiseSource<T>& noise,
                          index_t g, double* sum_g, double* sum_gz, double* totals, T* partials) {
  const Options& options = rq.options;
  // M: the group's size over every rank when the batch is split across ranks.
  const double group_size =
      static_cast<double>(reduces_over_ranks(rq, ctx) ? rq.global.group_size : rq.layout.group_size());
  const bool lambda_has_gradient = ctx.batch_statistics && options.power_transform;
  const bool statistics_have_gradient = ctx.batch_statistics && options.standardize;
  const auto standardize = Standardizer<T>::from(ctx.mean[static_cast<std::size_t>(g)], ctx.rstd[static_cast<std::size_t>(g)]);
  const T rstd = standardize.rstd;
  const auto transform = math::PowerTransform<T>::make(ctx.lambda[static_cast<std::size_t>(g)], std::sqrt(options.eps), options.power_transform);
  const auto sensitivity = sensitivity_of(ctx, options, g, lambda_has_gradient);
  // Searching estimators: d lambda / d h_j from the search's trace (times M, to match
  // lambda_sensitivity's scaling).
  const bool searched = lambda_has_gradient && estimators::reads_group_values(options);
  const math::LambdaTrace<T>* trace = searched ? &ctx.lambda_traces[static_cast<std::size_t>(g)] : nullptr;
  auto lambda_sensitivity = [&](const auto& m) {
    using V = std::decay_t<decltype(m.h)>;
    if (searched) return V(T(group_size)) * math::lambda_gradient(m.h, *trace);
    return math::lambda_sensitivity(m, sensitivity);
  };
  // The noise only reaches grad_weight (through z); without it, skip replaying the draws.
  const T sigma = rq.grad_weight ? T(ctx.noise_scale[static_cast<std::size_t>(g)]) : T(0);
  // Without standardization the context holds mean 0 and rstd 1, so h = x exactly.
  // (Kept free of `cond ? batch : batch`: g++ 12 -O3 miscompiles that with AVX-512.)
  auto standardized = [&](auto value) { return standardize(value); };

  constexpr index_t chunk = backward_chunk;
  T normals[chunk];
  constexpr index_t max_width = 64;
  T lane_g[max_width], lane_gz[max_width];
  // u psi_h and d lambda of the group's element at traversal index j: partial_psi[j], partial_dl[j].
  T* const partial_psi = partials;
  T* const partial_dl = partials ? partials + rq.layout.group_size() : nullptr;
  index_t run_start = 0;  // traversal index of the current run's first element

  if constexpr (Pass == 1) {
  // Pass 1: the group's sums and the affine parameters' sums.
  for (int k = 0; k < 5; ++k) totals[k] = 0.0;  // Lambda, sum u psi_h, sum u psi_h h, sum dlambda, sum dlambda h
  // Philox draws are keyed by the flat index in the global batch (0 offset in one process).
  const index_t key_offset = noise.kind == NoiseKind::philox ? rq.global.noise_offset : 0;
  for_each_affine_run(rq.layout, g, [&](const AffineRun& run) {
    for (index_t start = 0; start < run.length; start += chunk) {
      const index_t n = std::min(chunk, run.length - start);
      if (sigma != T(0)) fill_noise<T, Arch>(noise, key_offset + run.offset + start, n, normals);
      math::LaneSums<T, Arch, 5> sums;
      math::LaneSums<T, Arch, 2> channel_sums;
      math::for_each_lane<T, Arch>(n, [&](auto zero, index_t i) {
        using V = decltype(zero);
        const index_t p = run.offset + start + i;
        const V h = standardized(math::load<V>(rq.x + p));
        const auto m = math::magnitude_of(h);
        const auto td = math::power_transform_derivatives(m, transform);
        const V grad = math::load<V>(rq.grad_out + p);
        const V u = affine_at<V>(rq.weight, run, start + i, T(1)) * grad;
        V z = td.y;
        if (sigma != T(0)) z = z + math::rounded_term(V(sigma) * math::load<V>(normals + i));
        const V u_psi_h = u * td.psi_h;
        sums.add(0, u * td.psi_l);
        sums.add(1, u_psi_h);
        sums.add(2, u_psi_h * h);
        if (partials) math::store(partial_psi + run_start + start + i, u_psi_h);
        if (lambda_has_gradient) {
          const V dl = lambda_sensitivity(m);
          sums.add(3, dl);
          sums.add(4, dl * h);
          if (partials) math::store(partial_dl + run_start + start + i, dl);
        }
        if (run.per_element) {
          // Each lane is its own affine parameter (layer form).
          constexpr index_t width = math::lane_traits<V>::width;
          math::store(lane_g, grad);
          math::store(lane_gz, grad * z);
          for (index_t l = 0; l < width; ++l) {
            sum_g[run.channel + start + i + l] += lane_g[l];
            sum_gz[run.channel + start + i + l] += lane_gz[l];
          }
        } else {
          channel_sums.add(0, grad);
          channel_sums.add(1, grad * z);
        }
      });
      for (int k = 0; k < 5; ++k) totals[k] += sums.total(k);
      if (!run.per_element) {
        sum_g[run.channel] += channel_sums.total(0);
        sum_gz[run.channel] += channel_sums.total(1);
      }
    }
    run_start += run.length;
  });
  } else {

  // dlambda_j = lambda_sensitivity_j / M, so the lambda terms carry 1 / M.
  const double lambda_weight = totals[0] / group_size;
  double mean_gh = 0.0, mean_gh_h = 0.0;
  if (statistics_have_gradient) {
    mean_gh = (totals[1] + lambda_weight * totals[3]) / group_size;
    mean_gh_h = (totals[2] + lambda_weight * totals[4]) / group_size;
  }
  const T lambda_term = T(lambda_weight), centre = T(mean_gh), slope = T(mean_gh_h);

  // Pass 2: grad_x.
  for_each_affine_run(rq.layout, g, [&](const AffineRun& run) {
    if (partials) {
      math::for_each_lane<T, Arch>(run.length, [&](auto zero, index_t i) {
        using V = decltype(zero);
        const V h = standardized(math::load<V>(rq.x + run.offset + i));
        V gh = math::load<V>(partial_psi + run_start + i);
        if (lambda_has_gradient) gh = gh + math::rounded_term(V(lambda_term) * math::load<V>(partial_dl + run_start + i));
        math::store(rq.grad_x + run.offset + i, V(rstd) * (gh - V(centre) - math::rounded_term(h * V(slope))));
      });
    } else {
      math::for_each_lane<T, Arch>(run.length, [&](auto zero, index_t i) {
        using V = decltype(zero);
        const index_t p = run.offset + i;
        const V h = standardized(math::load<V>(rq.x + p));
        const auto m = math::magnitude_of(h);
        const auto td = math::power_transform_derivatives(m, transform);
        const V u = affine_at<V>(rq.weight, run, i, T(1)) * math::load<V>(rq.grad_out + p);
        V gh = math::rounded_term(u * td.psi_h);
        if (lambda_has_gradient) gh = gh + math::rounded_term(V(lambda_term) * lambda_sensitivity(m));
        math::store(rq.grad_x + p, V(rstd) * (gh - V(centre) - math::rounded_term(h * V(slope))));
      });
    }
    run_start += run.length;
  });
  }
}

// Both passes for group g (one process, or statistics that are not the batch's),
// with the calling thread's partials buffer when there is one.
template <class T, class Arch>
inline void backward_group(const BackwardRequest<T>& rq, const SavedContext<T>& ctx, const NoiseSource<T>& noise,
                           index_t g, double* sum_g, double* sum_gz, const Workers& workers) {
  double totals[5];
  T* partials = nullptr;
  if (rq.grad_x && ctx.scratch.partials)
    partials = ctx.scratch.partials + static_cast<index_t>(workers.slot()) * 2 * rq.layout.group_size();
  backward_pass<T, Arch, 1>(rq, ctx, noise, g, sum_g, sum_gz, totals, partials);
  if (!rq.grad_x) return;
  backward_pass<T, Arch, 2>(rq, ctx, noise, g, sum_g, sum_gz, totals, partials);
}

// Groups of the channel-sharing forms are processed in this many fixed blocks,
// each with its own per-channel accumulators, summed in block order afterwards:
// the same sums for any thread count.
constexpr index_t max_accumulator_blocks = 64;

// Blocks of groups, each with its own per-channel accumulators. Batch forms: group g
// is channel g, so groups never share an accumulator. Other forms: groups share channels.
inline index_t accumulator_blocks(const Layout& layout) {
  return layout.groups_span_batch ? 1 : std::min(layout.num_groups(), max_accumulator_blocks);
}

// grad_bias and grad_weight from `blocks` blocks of per-channel sums (each sum g [C],
// then sum g z [C]), added in block order.
template <class T>
inline void write_affine_gradients(const BackwardRequest<T>& rq, const double* sums, index_t channels, index_t blocks) {
  for (index_t c = 0; c < channels; ++c) {
    double total_g = 0, total_gz = 0;
    for (index_t block = 0; block < blocks; ++block) {
      total_g += sums[2 * channels * block + c];
      total_gz += sums[2 * channels * block + channels + c];
    }
    if (rq.grad_bias) rq.grad_bias[c] = T(total_g);
    if (rq.grad_weight) rq.grad_weight[c] = T(total_gz);
  }
}

}  // namespace detail

// Groups up to this many values keep their per-element partials between the two
// passes (2 values each: 256 KiB per thread in float, half of this machine's L2
// share); larger groups recompute them. Measured in docs/benchmarks.md ("Backward").
constexpr index_t max_partial_group = 32768;

// The backward's scratch in the workspace: `transposed_values` for the caller's
// transposed copies, per block of groups each channel's sum(g) and sum(g z), and
// for each of `worker_slots` threads (engine::worker_slots) one group's partials.
// `partial_lanes`: groups walked at once per thread (max_column_lanes on columns, else 1).
template <class T>
inline ScratchPlan backward_scratch_plan(const Layout& layout, index_t transposed_values, bool reduces_over_ranks,
                                         index_t worker_slots, index_t partial_lanes = 1) {
  ScratchPlan scratch;
  scratch.transposed_values = transposed_values;
  scratch.transposed = scratch.add(transposed_values, sizeof(T));
  scratch.channel_sum_count = 2 * layout.channels * detail::accumulator_blocks(layout);
  // Over ranks: the five group sums of every group after the accumulators.
  if (reduces_over_ranks) scratch.channel_sum_count += 5 * layout.num_groups();
  scratch.channel_sums = scratch.add(scratch.channel_sum_count, sizeof(double));
  // Over ranks, pass 2 runs after the collective, so the partials would be every group's: recompute.
  if (!reduces_over_ranks && layout.group_size() <= max_partial_group)
    scratch.partial_count = worker_slots * 2 * layout.group_size() * partial_lanes;
  scratch.partials = scratch.add(scratch.partial_count, sizeof(T));
  return scratch;
}

// The backward on groups that are columns (engine/column_backward.hpp).
template <class T, class Arch>
void backward_columns(const BackwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers);

// The kernel. Needs the scratch carved first (backward_scratch_plan).
template <class T, class Arch>
inline void backward(const BackwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  if (rq.columns.active()) return backward_columns<T, Arch>(rq, ctx, workers);
  const Layout& layout = rq.layout;
  const index_t groups = layout.num_groups();
  const index_t channels = layout.channels;
  const double group_bytes = static_cast<double>(layout.group_size() * static_cast<index_t>(sizeof(T)));
  const double group_cycles = 60.0 * static_cast<double>(layout.group_size());

  const NoiseSource<T>& noise = rq.noise;

  const index_t blocks = detail::accumulator_blocks(layout);
  const index_t groups_per_block = (groups + blocks - 1) / blocks;
  double* scratch = ctx.scratch.channel_sums;
  for (index_t i = 0; i < 2 * channels * blocks; ++i) scratch[i] = 0.0;
  if (detail::reduces_over_ranks(rq, ctx)) {
    // Pass 1 over every group, one collective for all their sums (5 per group), pass 2.
    // (grad_weight and grad_bias stay this rank's own sums, as PyTorch's SyncBatchNorm:
    // data-parallel training reduces parameter gradients itself.)
    double* totals = scratch + 2 * channels;
    parallel_for(workers, groups, 2 * group_bytes, group_cycles / 2, [&](index_t g) {
      detail::backward_pass<T, Arch, 1>(rq, ctx, noise, g, scratch, scratch + channels, totals + 5 * g, nullptr);
    });
    allreduce_sum(*rq.reducer, totals, static_cast<std::size_t>(5 * groups));
    if (rq.grad_x)
      parallel_for(workers, groups, 2 * group_bytes, group_cycles / 2, [&](index_t g) {
        detail::backward_pass<T, Arch, 2>(rq, ctx, noise, g, scratch, scratch + channels, totals + 5 * g, nullptr);
      });
  } else if (layout.groups_span_batch) {
    parallel_for(workers, groups, 3 * group_bytes, group_cycles, [&](index_t g) {
      detail::backward_group<T, Arch>(rq, ctx, noise, g, scratch, scratch + channels, workers);
    });
  } else {
    parallel_for(workers, blocks, 3 * group_bytes * static_cast<double>(groups_per_block),
                 group_cycles * static_cast<double>(groups_per_block), [&](index_t block) {
                   double* sum_g = scratch + 2 * channels * block;
                   const index_t last = std::min(groups, (block + 1) * groups_per_block);
                   for (index_t g = block * groups_per_block; g < last; ++g)
                     detail::backward_group<T, Arch>(rq, ctx, noise, g, sum_g, sum_g + channels, workers);
                 });
  }
  detail::write_affine_gradients(rq, scratch, channels, blocks);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
