#pragma once
// Storage types. Tensors (input, output, grad_output, grad_input) may be stored in
// float, double, or a 2-byte type, Eigen::bfloat16 or Eigen::half, whose
// computation runs in float, as mixed-precision training keeps it: weight, bias,
// running statistics, noise draws, grad_weight, grad_bias and the saved context are
// in the compute type, compute_t<S>.
//
// For a 2-byte type the API widens the input into the context's workspace, runs the
// float engine there, and rounds the result to nearest even on the way out
// (api.hpp); the result is bit for bit the float computation on the widened input,
// rounded once.

#include <type_traits>

#include <Eigen/Core>

#include "normnorm/config.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm {

template <class S>
struct storage_traits {
  static constexpr bool supported = false;
};
template <>
struct storage_traits<float> {
  static constexpr bool supported = true;
  using compute = float;
};
template <>
struct storage_traits<double> {
  static constexpr bool supported = true;
  using compute = double;
};
template <>
struct storage_traits<Eigen::bfloat16> {
  static constexpr bool supported = true;
  using compute = float;
};
template <>
struct storage_traits<Eigen::half> {
  static constexpr bool supported = true;
  using compute = float;
};

// The type a storage type S computes in (and keeps parameters and statistics in).
template <class S>
using compute_t = typename storage_traits<S>::compute;

// A storage type narrower than its compute type: the API converts at the boundary.
template <class S>
inline constexpr bool is_narrow_storage = !std::is_same_v<S, compute_t<S>>;

template <class S>
inline constexpr const char* storage_name() {
  if constexpr (std::is_same_v<S, float>) return "float";
  else if constexpr (std::is_same_v<S, double>) return "double";
  else if constexpr (std::is_same_v<S, Eigen::bfloat16>) return "bfloat16";
  else return "half";
}

namespace detail {
NORMNORM_TARGET_NAMESPACE_BEGIN

// Exact: every bfloat16 and half value is a float.
template <class S>
inline void widen(const S* in, compute_t<S>* out, index_t count) {
  for (index_t i = 0; i < count; ++i) out[i] = static_cast<compute_t<S>>(in[i]);
}

// Round to nearest even (Eigen's conversions); NaN stays NaN, values beyond the
// type's range become +-Inf (half: |x| > 65504).
template <class S>
inline void narrow(const compute_t<S>* in, S* out, index_t count) {
  for (index_t i = 0; i < count; ++i) out[i] = S(in[i]);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace detail
}  // namespace normnorm
