#pragma once
// The forward of the batch forms over a batch split across ranks
// (docs/distributed.md). The same computation as forward() and group_statistics(),
// stage by stage over all channels: each rank sums its own slice of every group,
// one collective per stage adds the partial sums (in rank order, engine/reduction.hpp),
// and every rank continues from the same global values. So every verdict (non-finite,
// zero scale, overflow) and every running statistic is the same bits on every rank.
//
// Collectives, each over all channels at once (C channels, doubles):
//   1. sum x                                       C values
//   2. sum (x - m)^2, sum (x - m)                   2C   (standardize)
//   2'. the same about the corrected mean          2C   (only when some channel needs it:
//                                                        near-constant values far from zero)
//   3. the five lambda sums, max h, max -h          7C   (power_transform)
//   4. sum y                                       C    (training with noise or running statistics)
//   5. sum |y - mean y|                            C    (the same)
// plus the handshake before the kernel (api.hpp): 9 values.

#include <algorithm>
#include <cmath>
#include <limits>

#include "normnorm/engine/forward.hpp"
#include "normnorm/engine/reduction.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

template <class T, class Arch>
index_t forward_reduced(const ForwardRequest<T>& rq, SavedContext<T>& ctx, const Workers& workers) {
  using math::load;
  const Layout& layout = rq.layout;
  const Options& options = rq.options;
  const Reducer& reducer = *rq.reducer;
  const ForwardPlan<T> plan = ForwardPlan<T>::of(rq);
  const bool training = plan.training, update_running = plan.update_running;
  const bool noisy = plan.noisy, need_spread = plan.need_spread;
  const index_t groups = layout.num_groups();
  const auto G = static_cast<std::size_t>(groups);
  const double group_size = static_cast<double>(rq.global.group_size);  // M over every rank
  const double group_bytes = static_cast<double>(layout.group_size() * static_cast<index_t>(sizeof(T)));
  const double group_cycles = 20.0 * static_cast<double>(layout.group_size());

  ctx.valid = false;
  ctx.mode = rq.mode;
  ctx.batch_statistics = true;
  ctx.noise_kind = noisy ? rq.noise.kind : NoiseKind::none;
  ctx.noise_seed = rq.noise.seed;
  ctx.noise_call = rq.noise.call;

  double* buffer = ctx.scratch.rank_sums;  // 7 per group: the collectives' records
  double* extremes = buffer + 7 * G;            // 2 per group: global max h, max -h
  GroupVerdict* verdict = ctx.scratch.verdicts;
  for (index_t g = 0; g < groups; ++g) {
    const auto at = static_cast<std::size_t>(g);
    verdict[g] = GroupVerdict::usable;
    ctx.mean[at] = 0.0;
    ctx.var[at] = 1.0;
    ctx.rstd[at] = 1.0;
    ctx.lambda[at] = 1.0;
    ctx.mean_hd[at] = ctx.mean_d[at] = ctx.g1[at] = ctx.g2[at] = 0.0;
    ctx.noise_scale[at] = 0.0;
    extremes[2 * at] = extremes[2 * at + 1] = 0.0;
  }
  auto for_groups = [&](auto&& work) { parallel_for(workers, groups, group_bytes, group_cycles, work); };

  // 1. sum x (taken even without standardization: it is how non-finite input is found).
  for_groups([&](index_t g) {
    buffer[g] = reduce_group<T, Arch, 1>(layout, g, [&](auto zero, index_t p, auto& sums) {
      sums.add(0, load<decltype(zero)>(rq.x + p));
    })[0];
  });
  allreduce_sum(reducer, buffer, G);
  // Sum x is overwritten below: its finiteness rides in the verdict.
  for (index_t g = 0; g < groups; ++g)
    if (!std::isfinite(buffer[g])) verdict[g] = GroupVerdict::non_finite;

  if (options.standardize) {
    // 2. Deviations about the first mean, kept in T as group_statistics does (the centre is
    // stored, exactly, in ctx.mean until the corrected mean replaces it).
    for (index_t g = 0; g < groups; ++g) ctx.mean[static_cast<std::size_t>(g)] = static_cast<double>(T(buffer[g] / group_size));
    auto deviations = [&](index_t g) {
      const T centre = T(ctx.mean[static_cast<std::size_t>(g)]);
      const auto d = reduce_group<T, Arch, 2>(layout, g, [&](auto zero, index_t p, auto& sums) {
        using V = decltype(zero);
        const V centred = load<V>(rq.x + p) - V(centre);
        sums.add(0, centred * centred);
        sums.add(1, centred);
      });
      buffer[2 * g] = d[0];
      buffer[2 * g + 1] = d[1];
    };
    std::size_t recentre = 0;  // groups to centre again; extremes[2 g] = 1 marks them
    {
      for_groups(deviations);
      allreduce_sum(reducer, buffer, 2 * G);
      for (index_t g = 0; g < groups; ++g) {
        const auto at = static_cast<std::size_t>(g);
        const double correction = buffer[2 * at + 1] / group_size;
        const double mean_square = buffer[2 * at] / group_size;
        const bool sum_finite = verdict[g] != GroupVerdict::non_finite;
        extremes[2 * at] = 0.0;  // 1: this group recentres
        if (sum_finite && std::isfinite(correction) &&
            !(std::isfinite(mean_square) && correction * correction <= 0.5 * mean_square)) {
          extremes[2 * at] = 1.0;
          ctx.mean[at] = static_cast<double>(T(ctx.mean[at] + correction));
          ++recentre;
        }
      }
    }
    if (recentre > 0) {
      // 2'. Again about the corrected mean, for the groups that need it (every rank
      // takes this branch or none: the decision comes from the reduced sums).
      double* second = buffer + 2 * G;  // 2 per group, after the first pass's records
      for_groups([&](index_t g) {
        const auto at = static_cast<std::size_t>(g);
        second[2 * at] = second[2 * at + 1] = 0.0;
        if (extremes[2 * at] == 0.0) return;
        const T centre = T(ctx.mean[at]);
        const auto d = reduce_group<T, Arch, 2>(layout, g, [&](auto zero, index_t p, auto& sums) {
          using V = decltype(zero);
          const V centred = load<V>(rq.x + p) - V(centre);
          sums.add(0, centred * centred);
          sums.add(1, centred);
        });
        second[2 * at] = d[0];
        second[2 * at + 1] = d[1];
      });
      allreduce_sum(reducer, second, 2 * G);
      for (std::size_t at = 0; at < G; ++at)
        if (extremes[2 * at] != 0.0) {
          buffer[2 * at] = second[2 * at];
          buffer[2 * at + 1] = second[2 * at + 1];
        }
    }
    for (index_t g = 0; g < groups; ++g) {
      const auto at = static_cast<std::size_t>(g);
      extremes[2 * at] = 0.0;
      const double correction = buffer[2 * at + 1] / group_size;
      ctx.mean[at] = ctx.mean[at] + correction;
      const double spread = buffer[2 * at] / group_size;
      ctx.var[at] = std::isfinite(spread) ? std::max(0.0, spread - correction * correction) : spread;
      ctx.rstd[at] = 1.0 / std::sqrt(ctx.var[at] + options.eps);
      if (!std::isfinite(ctx.var[at]) && verdict[g] == GroupVerdict::usable) verdict[g] = GroupVerdict::non_finite;
      if (ctx.var[at] + options.eps == 0.0) verdict[g] = GroupVerdict::zero_scale;
    }
  }

  if (options.power_transform) {
    // 3. The lambda sums and the extremes of h, in records of 7.
    for_groups([&](index_t g) {
      const auto at = static_cast<std::size_t>(g);
      const auto standardize = Standardizer<T>::from(ctx.mean[at], ctx.rstd[at]);
      ExtremesOfH<T, Arch> extremes_of_h;
      const auto sums = reduce_group<T, Arch, 5>(layout, g, [&](auto zero, index_t p, auto& acc) {
        using V = decltype(zero);
        const V h = standardize(load<V>(rq.x + p));
        extremes_of_h.track(h);
        add_lambda_terms<T>(acc, h);
      });
      GroupStatistics largest;
      extremes_of_h.of_group(largest);
      double* record = buffer + 7 * at;
      for (std::size_t k = 0; k < 5; ++k) record[k] = sums[k];
      record[5] = largest.max_h;
      record[6] = largest.max_minus_h;
    });
    allreduce_sum_max(reducer, buffer, 7 * G, 7, 5);
    for (index_t g = 0; g < groups; ++g) {
      const auto at = static_cast<std::size_t>(g);
      const double* record = buffer + 7 * at;
      GroupStatistics stats;
      estimate_lambda(options, record[0], record[1], record[2], record[3], record[4], group_size, stats);
      ctx.lambda[at] = stats.lambda;
      ctx.mean_hd[at] = stats.mean_hd;
      ctx.mean_d[at] = stats.mean_d;
      ctx.g1[at] = stats.g1;
      ctx.g2[at] = stats.g2;
      extremes[2 * at] = record[5];
      extremes[2 * at + 1] = record[6];
      bool finite = true;
      for (std::size_t k = 0; k < 5; ++k) finite = finite && std::isfinite(record[k]);
      if (!finite && verdict[g] == GroupVerdict::usable) verdict[g] = GroupVerdict::non_finite;
      if (!finite) ctx.lambda[at] = std::numeric_limits<double>::quiet_NaN();  // as record_group (forward.hpp)
      if (verdict[g] == GroupVerdict::usable &&
          transform_overflows<T>(stats.lambda, record[5], record[6], options.eps, group_size))
        verdict[g] = GroupVerdict::overflows;
    }
  }
  if (training)
    for (index_t g = 0; g < groups; ++g)
      if (verdict[g] != GroupVerdict::usable) return g;

  // Nothing below can fail.
  double factor = 0.0;
  if (update_running) {
    std::int64_t batches = 1;
    if (std::int64_t* count = rq.running.num_batches_tracked) {
      if (*count < std::numeric_limits<std::int64_t>::max()) ++*count;
      batches = *count;
    }
    factor = running_update_factor(options.momentum, batches);
  }
  auto transform_of = [&](std::size_t at) {
    return math::PowerTransform<T>::make(ctx.lambda[at], std::sqrt(options.eps), options.power_transform);
  };
  auto standardizer_of = [&](std::size_t at) { return Standardizer<T>::from(ctx.mean[at], ctx.rstd[at]); };

  if (!need_spread) {
    for_groups([&](index_t g) {
      const auto at = static_cast<std::size_t>(g);
      detail::write_affine<T, Arch, false>(rq, g, standardizer_of(at), transform_of(at), T(0));
    });
    if (update_running)
      for (index_t g = 0; g < groups; ++g) detail::update_running_group(rq, ctx, g, 0.0, factor, group_size);
    ctx.valid = true;
    return no_failed_group;
  }

  // 4. y into out while summing it.
  for_groups([&](index_t g) {
    const auto at = static_cast<std::size_t>(g);
    const auto standardize = standardizer_of(at);
    const auto transform = transform_of(at);
    buffer[at] = reduce_group<T, Arch, 1>(layout, g, [&](auto zero, index_t p, auto& sums) {
      using V = decltype(zero);
      const V y = math::power_transform(standardize(load<V>(rq.x + p)), transform);
      math::store(rq.out + p, y);
      sums.add(0, y);
    })[0];
  });
  allreduce_sum(reducer, buffer, G);
  // 5. The mean absolute deviation of y (mean y rounded to T, as write_group does).
  for_groups([&](index_t g) {
    const auto at = static_cast<std::size_t>(g);
    const T mean_y = T(buffer[at] / group_size);
    buffer[G + at] = reduce_group<T, Arch, 1>(layout, g, [&](auto zero, index_t p, auto& sums) {
      using V = decltype(zero);
      sums.add(0, math::abs(load<V>(rq.out + p) - V(mean_y)));
    })[0];
  });
  allreduce_sum(reducer, buffer + G, G);
  for_groups([&](index_t g) {
    const auto at = static_cast<std::size_t>(g);
    const double spread = buffer[G + at] / group_size;
    const double sigma = noisy ? options.noise_train * spread : 0.0;
    ctx.noise_scale[at] = sigma;
    detail::write_affine<T, Arch, true>(rq, g, standardizer_of(at), transform_of(at), T(sigma));
  });
  if (update_running)
    for (index_t g = 0; g < groups; ++g)
      detail::update_running_group(rq, ctx, g, buffer[G + static_cast<std::size_t>(g)] / group_size, factor, group_size);
  ctx.valid = true;
  return no_failed_group;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
