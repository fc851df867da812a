#pragma once
// Evaluation of the batch forms with running statistics: every channel's map
// x -> out is fixed, so it is folded into per-channel constants (an
// EvaluationCache, rebuilt only when its parameters change) and applied in one
// read-only pass, one log1p and one expm1 per element:
//   h = (x - mean) rstd,  L = log1p(|h|),
//   out = k expm1(et L) + beta   with k = gamma / et   (or -gamma / et for h < 0),
//   out = k L + beta             on a side where |eta| <= sqrt(eps) (k = +-gamma).
// Rows of the (N, C) form run across channels (each lane its own channel), so
// BatchNormalNorm1d vectorizes too.

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "normnorm/context.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/engine/polynomial_map.hpp"
#include "normnorm/engine/traversal.hpp"
#include "normnorm/math/yeo_johnson.hpp"
#include "normnorm/running_stats.hpp"
#include "normnorm/storage.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// Per-channel constants, laid out as arrays so lanes can load one per channel.
template <class T>
struct ChannelMaps {
  const T *mean, *rstd, *beta;
  const T *exponent_nonneg, *exponent_neg;  // et for h >= 0 and h < 0 (0 on a log side)
  const T *scale_nonneg, *scale_neg;        // k for h >= 0 and h < 0
  const T *log_nonneg, *log_neg;            // 1 where that side is s L, else 0
  bool any_log;
};

// The folded map of x, each constant from `constant(&ChannelMaps<T>::field)` (a lane
// batch, or T for the scalar elements). The log-side flags are read only where some
// channel has a log side.
template <class V, class Constant>
NORMNORM_ALWAYS_INLINE V map_value(const V& x, const Constant& constant, bool any_log) {
  using T = typename math::lane_traits<V>::scalar;
  using M = ChannelMaps<T>;
  const V h = (x - constant(&M::mean)) * constant(&M::rstd);
  const auto nonneg = h >= V(T(0));
  const V L = math::log1p_of_magnitude(math::abs(h));
  V power = math::expm1_of_exponent(math::where(nonneg, constant(&M::exponent_nonneg), constant(&M::exponent_neg)) * L);
  if (any_log) {
    const V log_side = math::where(nonneg, constant(&M::log_nonneg), constant(&M::log_neg));
    power = math::where(log_side != V(T(0)), L, power);
  }
  return power * math::where(nonneg, constant(&M::scale_nonneg), constant(&M::scale_neg)) + constant(&M::beta);
}

// Channel c's map read from the cache: per lane (each lane its own channel, (N, C) rows)
// or broadcast.
template <class V, class T>
NORMNORM_ALWAYS_INLINE V apply_channel_map(const V& x, const ChannelMaps<T>& maps, index_t c, bool per_lane) {
  return map_value(
      x, [&](const T* ChannelMaps<T>::*field) { return per_lane ? math::load<V>(maps.*field + c) : V((maps.*field)[c]); },
      maps.any_log);
}

// One channel's constants as lanes, read once before a run: the run's loop stores to out,
// and constants read through the cache's pointers would be reloaded every batch (out may
// alias the cache, as far as the compiler knows): 0.83-0.87x on batch_2d evaluation.
template <class V>
struct ChannelMap {
  using T = typename math::lane_traits<V>::scalar;
  using M = ChannelMaps<T>;
  V mean, rstd, beta, exponent_nonneg, exponent_neg, scale_nonneg, scale_neg, log_nonneg, log_neg;
  bool any_log;

  ChannelMap(const M& maps, index_t c)
      : mean(maps.mean[c]), rstd(maps.rstd[c]), beta(maps.beta[c]), exponent_nonneg(maps.exponent_nonneg[c]),
        exponent_neg(maps.exponent_neg[c]), scale_nonneg(maps.scale_nonneg[c]), scale_neg(maps.scale_neg[c]),
        log_nonneg(maps.log_nonneg[c]), log_neg(maps.log_neg[c]), any_log(maps.any_log) {}
  // map_value's constant(&ChannelMaps<T>::field): folds to the member once inlined.
  NORMNORM_ALWAYS_INLINE const V& operator()(const T* M::*field) const {
    if (field == &M::mean) return mean;
    if (field == &M::rstd) return rstd;
    if (field == &M::beta) return beta;
    if (field == &M::exponent_nonneg) return exponent_nonneg;
    if (field == &M::exponent_neg) return exponent_neg;
    if (field == &M::scale_nonneg) return scale_nonneg;
    if (field == &M::scale_neg) return scale_neg;
    if (field == &M::log_nonneg) return log_nonneg;
    return log_neg;
  }
};

template <class V>
NORMNORM_ALWAYS_INLINE V apply_channel_map(const V& x, const ChannelMap<V>& map) {
  return map_value(x, map, map.any_log);
}

// A channel's map as a batch and as a scalar, hoisted out of a run's math::for_each_lane.
template <class T, class Arch>
struct RunMap {
  ChannelMap<math::lane_batch<T, Arch>> wide;
  ChannelMap<T> narrow;
  RunMap(const ChannelMaps<T>& maps, index_t c) : wide(maps, c), narrow(maps, c) {}
  template <class V>
  NORMNORM_ALWAYS_INLINE const ChannelMap<V>& as() const {
    if constexpr (std::is_arithmetic_v<V>) return narrow;
    else return wide;
  }
};

// One channel's run of `length` float values through its polynomial map; a SIMD
// batch with a value beyond the table (1 + |h| >= 16, or NaN) takes the exact map whole.
template <class Arch>
inline void evaluate_run_with_polynomial(const float* run_x, float* run_out, index_t length,
                                         const ChannelMaps<float>& maps, index_t c, const float* table) {
  const PolynomialChannel<math::lane_batch<float, Arch>, Arch> wide(table);
  const PolynomialChannel<float, Arch> narrow(table);
  math::for_each_lane<float, Arch>(length, [&](auto zero, index_t i) {
    using V = decltype(zero);
    const auto& map = [&]() -> const PolynomialChannel<V, Arch>& {
      if constexpr (std::is_same_v<V, float>) return narrow;
      else return wide;
    }();
    const V x = math::load<V>(run_x + i);
    const V h = (x - V(maps.mean[c])) * V(maps.rstd[c]);
    math::store(run_out + i, PolynomialChannel<V, Arch>::covers(h) ? map(h) : apply_channel_map(x, maps, c, false));
  });
}

// The cache's key: eps, standardize and whether it has tables, then per channel
// the running mean, var, lambda, gamma and beta it was built from.
inline constexpr index_t evaluation_key_header = 3;

// Whether the cache was built from exactly these parameters: O(channels).
template <class T>
inline bool evaluation_cache_current(const EvaluationCache<T>& cache, const Options& options, index_t channels,
                                     const T* weight, const T* bias, const RunningStats<T>& running, bool with_tables) {
  if (!cache.ready || cache.channels != channels ||
      cache.key.size() != static_cast<std::size_t>(evaluation_key_header + 5 * channels) ||
      cache.key[0] != options.eps || cache.key[1] != double(options.standardize) || cache.key[2] != double(with_tables))
    return false;
  const double* key = cache.key.data() + evaluation_key_header;
  for (index_t c = 0; c < channels; ++c, key += 5)
    if (key[0] != static_cast<double>(running.mean[c]) || key[1] != static_cast<double>(running.var[c]) ||
        key[2] != static_cast<double>(running.lambda[c]) || key[3] != (weight ? static_cast<double>(weight[c]) : 1.0) ||
        key[4] != (bias ? static_cast<double>(bias[c]) : 0.0))
      return false;
  return true;
}

// Folds every channel's map into the cache (and the polynomial tables when
// `with_tables`), unless it already holds exactly these parameters.
template <class T>
inline void prepare_evaluation(EvaluationCache<T>& cache, const Options& options, index_t channels, const T* weight,
                               const T* bias, const RunningStats<T>& running, bool with_tables) {
  if (evaluation_cache_current(cache, options, channels, weight, bias, running, with_tables)) return;
  cache.ready = false;
  cache.channels = channels;
  const auto count = static_cast<std::size_t>(channels);
  cache.constants.resize(9 * count);
  cache.lambda.resize(count);
  cache.key.resize(static_cast<std::size_t>(evaluation_key_header) + 5 * count);
  cache.key[0] = options.eps;
  cache.key[1] = double(options.standardize);
  cache.key[2] = double(with_tables);
  cache.any_log = false;
  const double sqrt_eps = std::sqrt(options.eps);
  T* base = cache.constants.data();
  for (index_t c = 0; c < channels; ++c) {
    const double mean = options.standardize ? static_cast<double>(running.mean[c]) : 0.0;
    const double var = options.standardize ? static_cast<double>(running.var[c]) : 1.0;
    const double rstd = options.standardize ? 1.0 / std::sqrt(var + options.eps) : 1.0;
    const double lambda = static_cast<double>(running.lambda[c]);
    const auto transform = math::PowerTransform<T>::make(lambda, sqrt_eps, true);
    const double gamma = weight ? static_cast<double>(weight[c]) : 1.0;
    base[c] = T(mean);
    base[channels + c] = T(rstd);
    base[2 * channels + c] = bias ? bias[c] : T(0);
    base[3 * channels + c] = transform.nonneg.exponent;
    base[4 * channels + c] = transform.neg.exponent;
    base[5 * channels + c] = T(transform.nonneg.is_log ? gamma : gamma * double(transform.nonneg.inv_exponent));
    base[6 * channels + c] = T(transform.neg.is_log ? -gamma : -gamma * double(transform.neg.inv_exponent));
    base[7 * channels + c] = T(transform.nonneg.is_log);
    base[8 * channels + c] = T(transform.neg.is_log);
    cache.any_log = cache.any_log || transform.any_log();
    cache.lambda[static_cast<std::size_t>(c)] = lambda;
    double* key = cache.key.data() + evaluation_key_header + 5 * c;
    key[0] = static_cast<double>(running.mean[c]);
    key[1] = static_cast<double>(running.var[c]);
    key[2] = lambda;
    key[3] = gamma;
    key[4] = bias ? static_cast<double>(bias[c]) : 0.0;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (with_tables) build_polynomial_tables(cache, options.eps, weight, bias);
    else cache.polynomial_tables.clear();
  }
  cache.ready = true;
}

// The cache's nine per-channel arrays (prepare_evaluation's order) as ChannelMaps.
template <class T>
inline ChannelMaps<T> channel_maps_of(const EvaluationCache<T>& cache, index_t channels) {
  const T* base = cache.constants.data();
  return {base, base + channels, base + 2 * channels, base + 3 * channels, base + 4 * channels,
          base + 5 * channels, base + 6 * channels, base + 7 * channels, base + 8 * channels, cache.any_log};
}

// out = each channel's folded map of x: reads only the cache, writes only out.
// Rows of (N, C) (inner 1) run their lanes across channels; runs of one channel
// take the polynomial map where the cache has tables and covers the channel's lambda.
template <class T, class Arch>
inline void apply_evaluation(const Layout& layout, const T* x, T* out, const EvaluationCache<T>& cache,
                             const Workers& workers) {
  const index_t channels = layout.channels;
  const ChannelMaps<T> maps = channel_maps_of(cache, channels);
  const index_t row = layout.sample_stride();
  if (layout.inner == 1) {  // (N, C) rows: lanes run across channels
    parallel_for(workers, layout.outer, 2.0 * double(row * static_cast<index_t>(sizeof(T))), 15.0 * double(row),
                 [&](index_t n) {
                   math::for_each_lane<T, Arch>(channels, [&](auto zero, index_t c) {
                     using V = decltype(zero);
                     math::store(out + n * row + c, apply_channel_map(math::load<V>(x + n * row + c), maps, c, true));
                   });
                 });
    return;
  }
  const float* tables = nullptr;
  if constexpr (std::is_same_v<T, float>)
    if (!cache.polynomial_tables.empty()) tables = cache.polynomial_tables.data();
  // One work item per (sample, channel) run.
  const index_t length = layout.inner;
  const double cycles_per_element = tables ? 3.0 : 15.0;  // a table lookup and a polynomial, or log1p and expm1
  parallel_for(workers, layout.outer * channels, 2.0 * double(length * static_cast<index_t>(sizeof(T))),
               cycles_per_element * double(length), [&](index_t item) {
                 const index_t n = item / channels, c = item % channels;
                 const index_t offset = n * row + c * length;
                 if constexpr (std::is_same_v<T, float>)
                   if (tables && pm::covers_lambda(cache.lambda[static_cast<std::size_t>(c)])) {
                     evaluate_run_with_polynomial<Arch>(x + offset, out + offset, length, maps, c,
                                                        tables + c * pm::table_size);
                     return;
                   }
                 const RunMap<T, Arch> map(maps, c);
                 math::for_each_lane<T, Arch>(length, [&](auto zero, index_t i) {
                   using V = decltype(zero);
                   math::store(out + offset + i, apply_channel_map(math::load<V>(x + offset + i), map.template as<V>()));
                 });
               });
}

// 2-byte storage (Eigen::bfloat16, Eigen::half) through the float maps: each run or
// row is widened into a block on the stack, mapped there, and rounded back, so the
// tensors are read and written once at their own width, with no full-size copy and
// no allocation. Bit for bit apply_evaluation<float> on the widened input, rounded once.
template <class S, class Arch>
inline void apply_evaluation_narrow(const Layout& layout, const S* x, S* out, const EvaluationCache<float>& cache,
                                    const Workers& workers) {
  constexpr index_t block = 256;
  const index_t channels = layout.channels;
  const ChannelMaps<float> maps = channel_maps_of(cache, channels);
  const index_t row = layout.sample_stride();
  if (layout.inner == 1) {  // (N, C) rows: lanes run across channels
    parallel_for(workers, layout.outer, 2.0 * double(row * static_cast<index_t>(sizeof(S))), 15.0 * double(row),
                 [&](index_t n) {
                   alignas(64) float values[block];
                   for (index_t first = 0; first < channels; first += block) {
                     const index_t count = std::min(block, channels - first);
                     ::normnorm::detail::widen(x + n * row + first, values, count);
                     math::for_each_lane<float, Arch>(count, [&](auto zero, index_t i) {
                       using V = decltype(zero);
                       math::store(values + i, apply_channel_map(math::load<V>(values + i), maps, first + i, true));
                     });
                     ::normnorm::detail::narrow(static_cast<const float*>(values), out + n * row + first, count);
                   }
                 });
    return;
  }
  const float* tables = cache.polynomial_tables.empty() ? nullptr : cache.polynomial_tables.data();
  const index_t length = layout.inner;
  const double cycles_per_element = tables ? 3.0 : 15.0;
  parallel_for(workers, layout.outer * channels, 2.0 * double(length * static_cast<index_t>(sizeof(S))),
               cycles_per_element * double(length), [&](index_t item) {
                 const index_t n = item / channels, c = item % channels;
                 const index_t offset = n * row + c * length;
                 const bool polynomial = tables && pm::covers_lambda(cache.lambda[static_cast<std::size_t>(c)]);
                 const RunMap<float, Arch> map(maps, c);
                 alignas(64) float values[block];
                 for (index_t first = 0; first < length; first += block) {
                   const index_t count = std::min(block, length - first);
                   ::normnorm::detail::widen(x + offset + first, values, count);
                   if (polynomial) {
                     evaluate_run_with_polynomial<Arch>(values, values, count, maps, c, tables + c * pm::table_size);
                   } else {
                     math::for_each_lane<float, Arch>(count, [&](auto zero, index_t i) {
                       using V = decltype(zero);
                       math::store(values + i, apply_channel_map(math::load<V>(values + i), map.template as<V>()));
                     });
                   }
                   ::normnorm::detail::narrow(static_cast<const float*>(values), out + offset + first, count);
                 }
               });
}

// Whether evaluation of this layout uses the polynomial map's tables: float, the
// option on, and runs of one channel (not (N, C) rows).
template <class T>
inline bool uses_polynomial_tables(const Options& options, const Layout& layout) {
  return std::is_same_v<T, float> && options.evaluation_map == EvaluationMap::polynomial && layout.inner > 1;
}

// Bytes prepare_evaluation allocates for `layout`'s channels: the memory plan's query.
template <class T>
inline std::size_t evaluation_cache_bytes(const Options& options, const Layout& layout) {
  const auto channels = static_cast<std::size_t>(layout.channels);
  const std::size_t tables = uses_polynomial_tables<T>(options, layout) ? channels * pm::table_size * sizeof(float) : 0;
  return 9 * channels * sizeof(T) + channels * sizeof(double) +
         (static_cast<std::size_t>(evaluation_key_header) + 5 * channels) * sizeof(double) + tables;
}

// A forward's evaluation with running statistics: the per-group state for the
// backward in ctx, then the map from ctx's cache (prepared by forward.hpp's
// prepare_forward, in the caller's translation unit).
// The per-group state a backward after an evaluation reads: the running statistics.
template <class T>
inline void record_running_stats(const Layout& layout, const Options& options, const RunningStats<T>& running,
                                 SavedContext<T>& ctx) {
  for (index_t c = 0; c < layout.channels; ++c) {
    const auto i = static_cast<std::size_t>(c);
    ctx.mean[i] = options.standardize ? static_cast<double>(running.mean[c]) : 0.0;
    ctx.var[i] = options.standardize ? static_cast<double>(running.var[c]) : 1.0;
    ctx.rstd[i] = options.standardize ? 1.0 / std::sqrt(ctx.var[i] + options.eps) : 1.0;
    ctx.lambda[i] = static_cast<double>(running.lambda[c]);
    ctx.noise_scale[i] = 0.0;
  }
}

template <class T, class Arch>
inline void evaluate_with_running_stats(const Layout& layout, const Options& options, const T* x,
                                        const RunningStats<T>& running, T* out, SavedContext<T>& ctx,
                                        const Workers& workers) {
  record_running_stats(layout, options, running, ctx);
  apply_evaluation<T, Arch>(layout, x, out, ctx.evaluation, workers);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
