#pragma once
// Checks every public entry point runs before it writes anything. Each failure
// is a Status whose message names the layer, the argument and what was expected:
// invalid_argument for shapes, sizes, buffers and options, domain_error for data
// the math cannot take (non-finite training input). The throwing entry points
// raise it as std::invalid_argument / std::domain_error.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "normnorm/estimators/registry.hpp"
#include "normnorm/layer_config.hpp"
#include "normnorm/status.hpp"

namespace normnorm::detail {

inline Status fail(const LayerConfig& config, const std::string& what) {
  return Status::invalid_argument(std::string("normnorm: ") + config.name() + ": " + what);
}

inline Status validate_options(const LayerConfig& config) {
  const Options& o = config.options;
  auto finite_non_negative = [&](double value, const char* name) -> Status {
    if (!std::isfinite(value) || value < 0)
      return fail(config, std::string(name) + " must be finite and >= 0, got " + std::to_string(value));
    return {};
  };
  NORMNORM_RETURN_IF_ERROR(finite_non_negative(o.eps, "eps"));
  NORMNORM_RETURN_IF_ERROR(finite_non_negative(o.noise_train, "noise_train"));
  NORMNORM_RETURN_IF_ERROR(finite_non_negative(o.alpha, "alpha"));
  if (o.momentum && !(*o.momentum >= 0.0 && *o.momentum <= 1.0))
    return fail(config, "momentum must be in [0, 1] (or none for the cumulative average), got " + std::to_string(*o.momentum));
  if (o.order != 1 && o.order != 2) return fail(config, "order must be 1 or 2, got " + std::to_string(o.order));
  if (const auto refused = estimators::check(o)) return fail(config, *refused);
  const int map = static_cast<int>(o.evaluation_map);
  if (map < 0 || map > static_cast<int>(EvaluationMap::polynomial))
    return fail(config, "evaluation_map must be exact or polynomial, got " + std::to_string(map));
  if (config.form == Form::layer) {
    if (config.normalized_shape.rank() == 0) return fail(config, "normalized_shape must have at least one axis");
    index_t count = 1;
    for (index_t d : config.normalized_shape) {
      if (d <= 0) return fail(config, "normalized_shape must be positive, got " + config.normalized_shape.to_string());
      if (count > std::numeric_limits<index_t>::max() / 8 / d)
        return fail(config, "normalized_shape " + config.normalized_shape.to_string() + " has too many elements");
      count *= d;
    }
  } else {
    if (config.num_features <= 0) return fail(config, "num_features must be positive, got " + std::to_string(config.num_features));
  }
  if (config.form == Form::group) {
    if (config.num_groups <= 0) return fail(config, "num_groups must be positive, got " + std::to_string(config.num_groups));
    if (config.num_features % config.num_groups != 0)
      return fail(config, "num_channels (" + std::to_string(config.num_features) + ") must be divisible by num_groups (" +
                       std::to_string(config.num_groups) + ")");
  }
  return {};
}

// The first field in which `requested` differs from `saved` (the config of the
// forward that filled a context), as "name: forward's value, now requested
// value"; empty when they are the same. Every field counts: a context is only
// valid for the configuration that made it.
inline std::string config_difference(const LayerConfig& saved, const LayerConfig& requested) {
  const Options& a = saved.options;
  const Options& b = requested.options;
  auto text = [](double value) {  // every digit: 1e-5 and 1e-5 (1 + 1e-15) must read differently
    char digits[32];
    std::snprintf(digits, sizeof digits, "%.17g", value);
    return std::string(digits);
  };
  auto flag = [](bool value) { return std::string(value ? "true" : "false"); };
  auto momentum = [](const std::optional<double>& m) { return m ? std::to_string(*m) : std::string("none"); };
  auto differs = [](const std::string& name, const std::string& was, const std::string& now) {
    return name + ": the forward's " + was + ", now " + now;
  };
  if (saved.form != requested.form) return differs("form", form_name(saved.form), form_name(requested.form));
  if (saved.num_features != requested.num_features)
    return differs("num_features", std::to_string(saved.num_features), std::to_string(requested.num_features));
  if (saved.normalized_shape != requested.normalized_shape)
    return differs("normalized_shape", saved.normalized_shape.to_string(), requested.normalized_shape.to_string());
  if (saved.form == Form::group && saved.num_groups != requested.num_groups)
    return differs("num_groups", std::to_string(saved.num_groups), std::to_string(requested.num_groups));
  if (a.eps != b.eps) return differs("eps", text(a.eps), text(b.eps));
  if (a.momentum != b.momentum) return differs("momentum", momentum(a.momentum), momentum(b.momentum));
  if (a.affine != b.affine) return differs("affine", flag(a.affine), flag(b.affine));
  if (a.track_running_stats != b.track_running_stats)
    return differs("track_running_stats", flag(a.track_running_stats), flag(b.track_running_stats));
  if (a.noise_train != b.noise_train) return differs("noise_train", text(a.noise_train), text(b.noise_train));
  if (a.order != b.order) return differs("order", std::to_string(a.order), std::to_string(b.order));
  if (a.estimator != b.estimator)
    return differs("estimator", estimator_name(a.estimator), estimator_name(b.estimator));
  if (a.newton_iterations != b.newton_iterations)
    return differs("newton_iterations", std::to_string(a.newton_iterations), std::to_string(b.newton_iterations));
  if (a.alpha != b.alpha) return differs("alpha", text(a.alpha), text(b.alpha));
  if (a.standardize != b.standardize) return differs("standardize", flag(a.standardize), flag(b.standardize));
  if (a.power_transform != b.power_transform)
    return differs("power_transform", flag(a.power_transform), flag(b.power_transform));
  if (a.evaluation_map != b.evaluation_map)
    return differs("evaluation_map", a.evaluation_map == EvaluationMap::exact ? "exact" : "polynomial",
                   b.evaluation_map == EvaluationMap::exact ? "exact" : "polynomial");
  return {};
}

// Positive dimensions whose product fits in index_t (and in bytes of T).
template <class T>
inline Status validate_shape(const LayerConfig& config, const Shape& shape) {
  index_t count = 1;
  const index_t limit = std::numeric_limits<index_t>::max() / static_cast<index_t>(sizeof(T));
  for (index_t d : shape) {
    if (d <= 0) return fail(config, "every input dimension must be positive, got " + shape.to_string());
    if (count > limit / d) return fail(config, "input shape " + shape.to_string() + " has too many elements");
    count *= d;
  }
  return {};
}

template <class T>
inline Status require_buffer(const LayerConfig& config, const T* pointer, index_t size, index_t expected, const char* name) {
  if (pointer == nullptr) return fail(config, std::string(name) + " is null");
  if (size != expected)
    return fail(config, std::string(name) + " must hold " + std::to_string(expected) + " values, got " + std::to_string(size));
  return {};
}

// Two buffers that share some bytes without being the same buffer.
inline bool partly_overlap(const void* a, index_t a_bytes, const void* b, index_t b_bytes) {
  if (!a || !b || a_bytes == 0 || b_bytes == 0) return false;
  const auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  const bool overlap = a0 < b0 + static_cast<std::uintptr_t>(b_bytes) && b0 < a0 + static_cast<std::uintptr_t>(a_bytes);
  return overlap && !(a0 == b0 && a_bytes == b_bytes);
}
inline bool any_overlap(const void* a, index_t a_bytes, const void* b, index_t b_bytes) {
  if (!a || !b || a_bytes == 0 || b_bytes == 0) return false;
  const auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a0 < b0 + static_cast<std::uintptr_t>(b_bytes) && b0 < a0 + static_cast<std::uintptr_t>(a_bytes);
}

}  // namespace normnorm::detail
