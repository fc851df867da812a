#pragma once
// The forward pass of every form: statistics for all groups first (reads only,
// so a bad training group is reported before anything is written), then one
// fused write pass per group, or three when training needs the spread of y.

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "normnorm/context.hpp"
#include "normnorm/engine/columns.hpp"
#include "normnorm/engine/evaluation.hpp"
#include "normnorm/engine/noise_draws.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/engine/scratch_plan.hpp"
#include "normnorm/engine/reduction.hpp"
#include "normnorm/engine/standardize.hpp"
#include "normnorm/engine/statistics.hpp"
#include "normnorm/estimators/registry.hpp"
#include "normnorm/running_stats.hpp"
#include "normnorm/status.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {

template <class T>
struct ForwardRequest {
  Layout layout;
  Options options;
  Mode mode = Mode::train;
  const char* layer_name = "NormalNorm";
  const T* x = nullptr;
  const T* weight = nullptr;  // null: no affine (gamma 1)
  const T* bias = nullptr;    // null: no affine (beta 0)
  RunningStats<T> running;    // absent: no running statistics
  NoiseSource<T> noise;
  T* kept_noise = nullptr;  // non-null: each draw is also stored here, at its engine-layout offset (Execution::keep_noise)
  T* out = nullptr;
  const Eigen::ThreadPoolDevice* device = nullptr;  // null: run on the calling thread
  // Batch forms over a batch split across ranks (docs/distributed.md): the reducer,
  // and what the handshake (api.hpp) learned of the global batch. Null: one process.
  const Reducer* reducer = nullptr;
  GlobalBatch global;
  // Active: groups that are the columns of the caller's rows ((N, C) and channels-last
  // batch input, channels-last instance input), walked in place (engine/column_forward.hpp).
  // `noise` is then external in memory order, or Philox keyed by the logical offset
  // (channels-last), which each block draws itself (engine/column_noise.hpp); placement.hpp
  // draws any other Philox noise into memory order first.
  Columns columns;
};

// Above: the type the kernel tables pass between translation units. Below: code,
// compiled per instruction set (detail/target_namespace.hpp).
NORMNORM_TARGET_NAMESPACE_BEGIN

// What a forward does, from its request alone: the kernel follows it, and the
// caller sizes the context by it (prepare_forward) before calling the kernel.
template <class T>
struct ForwardPlan {
  bool training, use_running, update_running, noisy, need_spread, fixed_map, search;

  static ForwardPlan of(const ForwardRequest<T>& rq) { return of(rq.mode, rq.options, rq.running.present()); }

  static ForwardPlan of(Mode mode, const Options& options, bool running_present) {
    ForwardPlan plan;
    plan.training = mode == Mode::train;
    plan.use_running = !plan.training && running_present;
    plan.update_running = plan.training && running_present;
    plan.noisy = plan.training && options.power_transform && options.noise_train > 0;
    plan.need_spread = plan.training && options.power_transform && (plan.noisy || plan.update_running);
    plan.fixed_map = plan.use_running && options.power_transform;  // engine/evaluation.hpp
    plan.search = options.power_transform && !plan.use_running && estimators::reads_group_values(options);
    return plan;
  }
};

namespace detail {

// Statistics of group g, either estimated from the group or read from the running buffers.
template <class T, class Arch>
inline GroupStatistics statistics_for(const ForwardRequest<T>& rq, bool use_running, index_t group) {
  if (!use_running) return group_statistics<T, Arch>(rq.layout, rq.options, rq.x, group);
  GroupStatistics stats;
  if (rq.options.standardize) {
    stats.mean = static_cast<double>(rq.running.mean[group]);
    stats.var = static_cast<double>(rq.running.var[group]);
    stats.rstd = 1.0 / std::sqrt(stats.var + rq.options.eps);
  }
  if (rq.options.power_transform) stats.lambda = static_cast<double>(rq.running.lambda[group]);
  return stats;
}

// out = gamma (y + sigma n) + beta over one group, y read from `source`
// (x, transformed on the fly, or y already written to out).
template <class T, class Arch, bool SourceIsY>
inline void write_affine(const ForwardRequest<T>& rq, index_t group, const Standardizer<T>& standardize,
                         const math::PowerTransform<T>& transform, T sigma) {
  constexpr index_t chunk = 256;
  T normals[chunk];
  for_each_affine_run(rq.layout, group, [&](const AffineRun& run) {
    for (index_t start = 0; start < run.length; start += chunk) {
      const index_t n = std::min(chunk, run.length - start);
      // Philox draws are keyed by the flat index in the global batch (0 offset in one process).
      const index_t key_offset = rq.noise.kind == NoiseKind::philox ? rq.global.noise_offset : 0;
      if (sigma != T(0)) {
        fill_noise<T, Arch>(rq.noise, key_offset + run.offset + start, n, normals);
        if (rq.kept_noise)
          for (index_t i = 0; i < n; ++i) rq.kept_noise[run.offset + start + i] = normals[i];
      }
      math::for_each_lane<T, Arch>(n, [&](auto zero, index_t i) {
        using V = decltype(zero);
        const index_t p = run.offset + start + i;
        V z;
        if constexpr (SourceIsY) {
          z = math::load<V>(rq.out + p);
        } else {
          const V value = math::load<V>(rq.x + p);
          z = math::power_transform(standardize(value), transform);
        }
        // Products rounded before their add, here and on columns (column_forward.hpp): the
        // same bits whichever way a compiler would have fused them.
        if (sigma != T(0)) z = z + math::rounded_term(V(sigma) * math::load<V>(normals + i));
        const V gamma = affine_at<V>(rq.weight, run, start + i, T(1));
        const V beta = affine_at<V>(rq.bias, run, start + i, T(0));
        math::store(rq.out + p, math::rounded_term(gamma * z) + beta);
      });
    }
  });
}


// The running statistics of group g after its training call (M = group_size).
template <class T>
inline void update_running_group(const ForwardRequest<T>& rq, const SavedContext<T>& ctx, index_t g, double spread,
                                 double factor, double group_size) {
  const Options& options = rq.options;
  // Unbiased variance and spread, as the paper's code does (M / (M - 1)).
  const double unbias = group_size / (group_size - 1.0);
  const RunningStats<T>& rs = rq.running;
  if (options.standardize) {
    rs.mean[g] = T(blend(factor, ctx.mean[static_cast<std::size_t>(g)], static_cast<double>(rs.mean[g])));
    rs.var[g] = T(blend(factor, ctx.var[static_cast<std::size_t>(g)] * unbias, static_cast<double>(rs.var[g])));
  }
  if (options.power_transform) {
    rs.lambda[g] = T(blend(factor, ctx.lambda[static_cast<std::size_t>(g)], static_cast<double>(rs.lambda[g])));
    rs.norm[g] = T(blend(factor, spread * unbias, static_cast<double>(rs.norm[g])));
  }
}

// Phase 2 for one group: transform, noise and affine, and its running statistics.
template <class T, class Arch>
inline void write_group(const ForwardRequest<T>& rq, SavedContext<T>& ctx, index_t g, bool need_spread, bool noisy,
                        bool update_running, double factor) {
  const Options& options = rq.options;
  const double group_size = static_cast<double>(rq.layout.group_size());
  const auto standardize = Standardizer<T>::from(ctx.mean[static_cast<std::size_t>(g)], ctx.rstd[static_cast<std::size_t>(g)]);
  const auto transform = math::PowerTransform<T>::make(ctx.lambda[static_cast<std::size_t>(g)], std::sqrt(options.eps), options.power_transform);
  double spread = 0.0;  // norm = mean |y - mean(y)|
  if (!need_spread) {
    write_affine<T, Arch, false>(rq, g, standardize, transform, T(0));
  } else {
    // y into out while summing it; then the mean absolute deviation; then noise and affine in place.
    const auto sum_y = reduce_group<T, Arch, 1>(rq.layout, g, [&](auto zero, index_t p, auto& sums) {
      using V = decltype(zero);
      const V y = math::power_transform(standardize(math::load<V>(rq.x + p)), transform);
      math::store(rq.out + p, y);
      sums.add(0, y);
    });
    const T mean_y = T(sum_y[0] / group_size);
    const auto deviation = reduce_group<T, Arch, 1>(rq.layout, g, [&](auto zero, index_t p, auto& sums) {
      using V = decltype(zero);
      sums.add(0, math::abs(math::load<V>(rq.out + p) - V(mean_y)));
    });
    spread = deviation[0] / group_size;
    const double sigma = noisy ? options.noise_train * spread : 0.0;
    ctx.noise_scale[static_cast<std::size_t>(g)] = sigma;
    write_affine<T, Arch, true>(rq, g, standardize, transform, T(sigma));
  }
  if (update_running) update_running_group(rq, ctx, g, spread, factor, group_size);
}

// What every forward records first: the call's mode and noise, the context not yet valid.
template <class T>
inline void start_forward(const ForwardRequest<T>& rq, const ForwardPlan<T>& plan, SavedContext<T>& ctx) {
  ctx.valid = false;
  ctx.mode = rq.mode;
  ctx.batch_statistics = !plan.use_running;
  ctx.noise_kind = plan.noisy ? rq.noise.kind : NoiseKind::none;
  ctx.noise_seed = rq.noise.seed;
  ctx.noise_call = rq.noise.call;
}

// Group g's statistics into the context, and its verdict into the scratch (searches:
// its extremes too, for the overflow check once lambda is known).
template <class T>
inline void record_group(const ForwardRequest<T>& rq, const ForwardPlan<T>& plan, const GroupStatistics& stats,
                         index_t g, SavedContext<T>& ctx) {
  const Options& options = rq.options;
  const bool estimates_lambda = options.power_transform && !plan.use_running;
  GroupVerdict& v = ctx.scratch.verdicts[g];
  v = GroupVerdict::usable;
  if (stats.zero_scale) v = GroupVerdict::zero_scale;
  else if (!stats.finite) v = GroupVerdict::non_finite;
  else if (estimates_lambda && !plan.search &&
           transform_overflows<T>(stats.lambda, stats.max_h, stats.max_minus_h, options.eps,
                                  static_cast<double>(rq.layout.group_size())))
    v = GroupVerdict::overflows;
  if (plan.search) {  // the overflow check waits for the searched lambda
    ctx.scratch.extremes[2 * g] = stats.max_h;
    ctx.scratch.extremes[2 * g + 1] = stats.max_minus_h;
  }
  const auto at = static_cast<std::size_t>(g);
  ctx.mean[at] = stats.mean;
  ctx.var[at] = stats.var;
  ctx.rstd[at] = stats.rstd;
  // Sums that overflowed T (finite input without standardization, |h| past ~1e17 in float)
  // leave lambda to rounding: SIMD and scalar lanes overflow at different elements. Evaluation
  // then gives the whole group NaN, as it does for NaN input (docs/reliability.md).
  // (Searches: set after the search, forward().)
  ctx.lambda[at] = v == GroupVerdict::non_finite && estimates_lambda && !plan.search ? std::numeric_limits<double>::quiet_NaN()
                                                                                      : stats.lambda;
  ctx.mean_hd[at] = stats.mean_hd;
  ctx.mean_d[at] = stats.mean_d;
  ctx.g1[at] = stats.g1;
  ctx.g2[at] = stats.g2;
  ctx.noise_scale[at] = 0.0;
}

// The running statistics' blend factor of this training call (0 when none are updated).
template <class T>
inline double running_factor(const ForwardRequest<T>& rq, const ForwardPlan<T>& plan) {
  if (!plan.update_running) return 0.0;
  std::int64_t batches = 1;
  // The count saturates at its largest value (a cumulative factor of ~1e-19 by then), never wraps.
  if (std::int64_t* count = rq.running.num_batches_tracked) {
    if (*count < std::numeric_limits<std::int64_t>::max()) ++*count;
    batches = *count;
  }
  return running_update_factor(rq.options.momentum, batches);
}

// Searching estimators (newton(k), exact): the standardized input, group-interleaved
// (value j of group g at j * groups + g), then math::search_lambda over it. Each
// group's trace stays in the context for the backward.
template <class T, class Arch>
inline void search_lambdas(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  const Layout& layout = rq.layout;
  const index_t groups = layout.num_groups(), size = layout.group_size();
  T* interleaved = ctx.scratch.interleaved;
  // In blocks of 16 groups: for each position j, the 16 groups' values go to one
  // contiguous run of the output (a cache line in float), read from 16 sequential streams.
  constexpr index_t block = 16;
  const index_t blocks = (groups + block - 1) / block;
  const double block_bytes = 2.0 * double(block * size * static_cast<index_t>(sizeof(T)));
  parallel_for(workers, blocks, block_bytes, 2.0 * double(block * size), [&](index_t b) {
    const index_t first = b * block, count = std::min(block, groups - first);
    Standardizer<T> standardize[block];
    const T* rows[block] = {};
    for (index_t k = 0; k < count; ++k) standardize[k] = Standardizer<T>::from(ctx.mean[static_cast<std::size_t>(first + k)], ctx.rstd[static_cast<std::size_t>(first + k)]);
    const index_t length = layout.segment_length();
    for (index_t segment = 0; segment < layout.segments_per_group(); ++segment) {
      for (index_t k = 0; k < count; ++k) rows[k] = rq.x + layout.segment_offset(first + k, segment);
      T* out = interleaved + segment * length * groups + first;
      for (index_t i = 0; i < length; ++i, out += groups)
        for (index_t k = 0; k < count; ++k) out[k] = standardize[k](rows[k][i]);
    }
  });
  const math::LambdaSearchSettings settings = estimators::search_settings(rq.options);
  math::search_lambda_unchecked<T, Arch>(interleaved, size, groups, settings, ctx.lambda_traces.data());
  for (index_t g = 0; g < groups; ++g) ctx.lambda[static_cast<std::size_t>(g)] = ctx.lambda_traces[static_cast<std::size_t>(g)].lambda;
}

}  // namespace detail

// Per-group doubles forward_reduced keeps in the scratch (rank_sums).
inline constexpr std::size_t reduced_scratch_per_group = 9;

// The forward's scratch in the workspace: `transposed_values` for the caller's
// transposed copies, each group's verdict, and for the searches each group's
// extremes and the group-interleaved input; over ranks, the collectives' records.
template <class T>
inline ScratchPlan forward_scratch_plan(const Layout& layout, const ForwardPlan<T>& plan, index_t transposed_values,
                                       bool reduces_over_ranks = false) {
  ScratchPlan scratch;
  scratch.transposed_values = transposed_values;
  scratch.transposed = scratch.add(transposed_values, sizeof(T));
  if (plan.fixed_map) return scratch;
  const index_t groups = layout.num_groups();
  scratch.verdict_count = groups;
  scratch.verdicts = scratch.add(groups, sizeof(GroupVerdict));
  if (reduces_over_ranks) {  // forward_reduced's per-group records of the collectives
    scratch.rank_sum_count = static_cast<index_t>(reduced_scratch_per_group) * groups;
    scratch.rank_sums = scratch.add(scratch.rank_sum_count, sizeof(double));
  }
  if (plan.search) {
    scratch.extreme_count = 2 * groups;
    scratch.extremes = scratch.add(2 * groups, sizeof(double));
    scratch.interleaved_values = groups * layout.group_size();
    scratch.interleaved = scratch.add(scratch.interleaved_values, sizeof(T));
  }
  return scratch;
}

// Sizes the state the kernel will fill (the scratch is carved beforehand, by the
// API). Runs in the caller's translation unit (dispatch.hpp's Kernels<T>): the
// kernels never grow a vector, so no std::vector code is compiled with a dispatch
// target's instructions.
template <class T>
inline void prepare_forward(const ForwardRequest<T>& rq, SavedContext<T>& ctx) {
  const ForwardPlan<T> plan = ForwardPlan<T>::of(rq);
  ctx.resize(rq.layout);
  if (plan.fixed_map) {
    prepare_evaluation(ctx.evaluation, rq.options, rq.layout.channels, rq.weight, rq.bias, rq.running,
                       uses_polynomial_tables<T>(rq.options, rq.layout));
    return;
  }
  if (plan.search) ctx.lambda_traces.resize(static_cast<std::size_t>(rq.layout.num_groups()));
}

inline constexpr index_t no_failed_group = -1;

// The batch forms' forward over a batch split across ranks (engine/forward_reduced.hpp).
template <class T, class Arch>
index_t forward_reduced(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers);

// The forward on groups that are columns (engine/column_forward.hpp).
template <class T, class Arch>
index_t forward_columns(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers);

// The kernel: returns no_failed_group, or (training only) the first group that is
// not finite, cannot be standardized, or whose power transform would overflow T,
// having written nothing; forward_failure() says why. Needs the scratch carved and prepare_forward first.
template <class T, class Arch>
inline index_t forward(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  const Layout& layout = rq.layout;
  const Options& options = rq.options;
  const ForwardPlan<T> plan = ForwardPlan<T>::of(rq);
  if (rq.reducer && layout.groups_span_batch && !plan.use_running) return forward_reduced<T, Arch>(rq, ctx, workers);
  if (rq.columns.active() && !plan.fixed_map) return forward_columns<T, Arch>(rq, ctx, workers);
  const bool training = plan.training, use_running = plan.use_running, update_running = plan.update_running;
  const bool noisy = plan.noisy, need_spread = plan.need_spread;
  const index_t groups = layout.num_groups();
  const double group_bytes = static_cast<double>(layout.group_size() * static_cast<index_t>(sizeof(T)));
  const double group_cycles = 20.0 * static_cast<double>(layout.group_size());

  detail::start_forward(rq, plan, ctx);

  if (plan.fixed_map) {
    // A fixed per-element map: one pass (engine/evaluation.hpp).
    evaluate_with_running_stats<T, Arch>(layout, options, rq.x, rq.running, rq.out, ctx, workers);
    ctx.valid = true;
    return no_failed_group;
  }

  // Phase 1: statistics of every group, before any write.
  GroupVerdict* verdict = ctx.scratch.verdicts;
  double* extremes = ctx.scratch.extremes;
  const double group_size = static_cast<double>(layout.group_size());
  const bool search = plan.search;
  parallel_for(workers, groups, group_bytes, group_cycles, [&](index_t g) {
    detail::record_group<T>(rq, plan, detail::statistics_for<T, Arch>(rq, use_running, g), g, ctx);
  });
  bool all_usable = true;
  for (index_t g = 0; g < groups; ++g) all_usable = all_usable && verdict[g] == GroupVerdict::usable;
  if (search && (all_usable || !training)) {
    // newton(k) or exact: one search over all groups at once (lanes = groups).
    detail::search_lambdas<T, Arch>(rq, ctx, workers);
    for (index_t g = 0; g < groups; ++g) {
      if (verdict[g] == GroupVerdict::non_finite)  // as record_group: the group's outputs are NaN
        ctx.lambda[static_cast<std::size_t>(g)] = std::numeric_limits<double>::quiet_NaN();
      if (verdict[g] == GroupVerdict::usable &&
          transform_overflows<T>(ctx.lambda[static_cast<std::size_t>(g)], extremes[2 * g], extremes[2 * g + 1], options.eps,
                                 group_size))
        verdict[g] = GroupVerdict::overflows;
    }
  }
  if (training)
    for (index_t g = 0; g < groups; ++g)
      if (verdict[g] != GroupVerdict::usable) return g;

  // Nothing below can fail.
  const double factor = detail::running_factor(rq, plan);

  // Phase 2: transform, noise and affine, group by group.
  parallel_for(workers, groups, 3 * group_bytes, 3 * group_cycles, [&](index_t g) {
    detail::write_group<T, Arch>(rq, ctx, g, need_spread, noisy, update_running, factor);
  });
  ctx.valid = true;
  return no_failed_group;
}

// Why the forward refused training group g (its verdict in the context). Built
// in the caller's translation unit: the kernels format no text.
template <class T>
inline Status forward_failure(const ForwardRequest<T>& rq, const SavedContext<T>& ctx, index_t g) {
  const GroupVerdict v = ctx.scratch.verdicts[g];
  std::string why;
  if (v == GroupVerdict::non_finite) why = " contains NaN or Inf (or overflows its sums)";
  if (v == GroupVerdict::zero_scale) why = " has zero variance and eps = 0, so it cannot be standardized (use eps > 0)";
  if (v == GroupVerdict::overflows)
    why = ": its lambda " + std::to_string(ctx.lambda[static_cast<std::size_t>(g)]) + " makes the power transform overflow (" +
          (sizeof(T) == 4 ? "float" : "double") + ")";
  return Status::domain_error(std::string("normnorm: ") + rq.layer_name + ": training input group " + std::to_string(g) +
                              why + "; outputs and running statistics were left unchanged");
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
