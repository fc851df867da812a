#pragma once
// Inference for the batch forms with running statistics, in two steps:
//
//   prepare_evaluation(config, weight, bias, running, cache)   folds each channel's fixed
//                                                               map into the cache (allocates)
//   evaluate(config, args, cache)                              applies it: writes only the
//                                                               output, allocates nothing
//
// evaluate reads the cache and never writes it, so any number of threads may
// share one. Its output is bit-identical to forward(config, Mode::eval, ...)
// with the same parameters. The module classes' infer() is built on these.

#include <string>

#include "normnorm/api.hpp"
#include "normnorm/storage.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm {

template <class T>
struct EvaluateArgs {
  const T* input = nullptr;
  Shape shape;
  T* output = nullptr;  // may equal input exactly (in place)
  MemoryFormat memory_format = MemoryFormat::contiguous;
};

namespace detail {

inline Status validate_prepared_config(const LayerConfig& config) {
  NORMNORM_RETURN_IF_ERROR(validate_options(config));
  if (!config.has_running_stats() || !config.options.power_transform)
    return fail(config, "prepared evaluation needs a batch form with track_running_stats and power_transform "
                        "(use forward in Mode::eval otherwise)");
  return {};
}

// Whether the cache holds the polynomial map's tables: float batch forms with the
// option on (used by inputs with runs of one channel: (N, C, L), NCHW, NCDHW).
template <class T>
inline bool cache_wants_tables(const LayerConfig& config) {
  return std::is_same_v<T, float> && is_batch_form(config.form) &&
         config.options.evaluation_map == EvaluationMap::polynomial;
}

}  // namespace detail

// The entry points call per-target code (engine::prepare_evaluation, the kernel
// choice), so they live in the per-target namespace as api.hpp's do.
NORMNORM_TARGET_NAMESPACE_BEGIN

// Builds (or keeps, when it already holds exactly these parameters) the cache.
template <class T>
inline Status try_prepare_evaluation(const LayerConfig& config, Span<const T> weight, Span<const T> bias,
                                     const RunningStats<T>& running, EvaluationCache<T>& cache) {
  NORMNORM_RETURN_IF_ERROR(detail::validate_prepared_config(config));
  const index_t channels = config.num_running();
  if (config.options.affine) {
    NORMNORM_RETURN_IF_ERROR(detail::require_buffer(config, weight.data, weight.size, channels, "weight"));
    NORMNORM_RETURN_IF_ERROR(detail::require_buffer(config, bias.data, bias.size, channels, "bias"));
  }
  for (auto [pointer, name] : {std::pair<const T*, const char*>{running.mean, "running_mean"}, {running.var, "running_var"},
                               {running.lambda, "running_lambda"}, {running.norm, "running_norm"}})
    NORMNORM_RETURN_IF_ERROR(detail::require_buffer(config, pointer, running.size, channels, name));
  const T* gamma = config.options.affine ? weight.data : nullptr;
  const T* beta = config.options.affine ? bias.data : nullptr;
#if NORMNORM_EXCEPTIONS
  try {
#endif
    cache.config = config;
    engine::prepare_evaluation(cache, config.options, channels, gamma, beta, running, detail::cache_wants_tables<T>(config));
#if NORMNORM_EXCEPTIONS
  } catch (const std::bad_alloc&) {
    cache.ready = false;
    return Status::out_of_memory(std::string("normnorm: ") + config.name() + ": cannot allocate the evaluation cache");
  }
#endif
  return {};
}

template <class T>
inline void prepare_evaluation(const LayerConfig& config, Span<const T> weight, Span<const T> bias,
                               const RunningStats<T>& running, EvaluationCache<T>& cache) {
  detail::raise_if_error(try_prepare_evaluation(config, weight, bias, running, cache));
}

// args.output = the layer in evaluation mode, from a prepared cache. T is the tensors'
// storage type (storage.hpp); the cache is in its compute type. A 2-byte type is
// widened and rounded in blocks inside the kernel: still no allocation.
template <class T>
inline Status try_evaluate(const LayerConfig& config, const EvaluateArgs<T>& args,
                           const EvaluationCache<compute_t<T>>& cache, const Execution& execution = {}) {
  static_assert(storage_traits<T>::supported, "normnorm supports float, double, Eigen::bfloat16 and Eigen::half");
  using C = compute_t<T>;
  NORMNORM_RETURN_IF_ERROR(detail::validate_prepared_config(config));
  if (!cache.ready) return detail::fail(config, "the evaluation cache is not prepared (prepare_evaluation)");
  const std::string difference = detail::config_difference(cache.config, config);
  if (!difference.empty()) return detail::fail(config, "the evaluation cache was prepared for another config (" + difference + ")");
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<C>(config, args.shape));
  engine::Placement placement;
  NORMNORM_RETURN_IF_ERROR(detail::place<C>(config, args.shape, args.memory_format, true, false, placement));
  if (!args.input) return detail::fail(config, "input is null");
  if (!args.output) return detail::fail(config, "output is null");
  const index_t bytes = placement.layout.num_elements() * static_cast<index_t>(sizeof(T));
  if (detail::partly_overlap(args.output, bytes, args.input, bytes))
    return detail::fail(config, "output partly overlaps input (only exactly the same buffer is allowed)");
  const engine::Kernels<C>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<C>(execution.simd_path, kernels));
  if constexpr (is_narrow_storage<T>)
    kernels->evaluate_narrow(placement.layout, args.input, args.output, cache, execution.device);
  else
    kernels->evaluate(placement.layout, args.input, args.output, cache, execution.device);
  return {};
}

template <class T>
inline void evaluate(const LayerConfig& config, const EvaluateArgs<T>& args, const EvaluationCache<compute_t<T>>& cache,
                     const Execution& execution = {}) {
  detail::raise_if_error(try_evaluate(config, args, cache, execution));
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm
