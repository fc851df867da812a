#pragma once
// Storage types. Tensors (input, output, grad_output, grad_input) may be stored in
// float, double, or a 2-byte type, Eigen::bfloat16 or Eigen::half, whose
// computation runs in float, as mixed-precision training keeps it: weight, bias,
// running statistics, noise draws, grad_weight, grad_bias and the saved context are
// in the compute type, compute_t<S>.
//
// For a 2-byte type the API widens the input into the context's workspace, runs the
// float engine there, and rounds the result to nearest even on the way out
// (api.hpp); evaluation with running statistics widens and rounds in stack blocks
// inside the kernel instead (engine/evaluation.hpp). Either way the result is bit for
// bit the float computation on the widened input, rounded once. The conversions are vectorizable loops that give exactly Eigen's
// results (F16C for half where Eigen itself uses it).

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <Eigen/Core>
// Eigen decides whether its half conversions use F16C (EIGEN_HAS_FP16_C: clang with
// -mf16c; g++ never, by Eigen 3.4's test). These follow the same choice, so that NaN
// payloads (which F16C quiets or truncates) come out as Eigen's.
#if defined(EIGEN_HAS_FP16_C)
#include <immintrin.h>
#endif

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

// The conversions give exactly Eigen's (tests/test_storage_types.cpp checks every
// 2-byte value and a sweep of floats), as loops the compiler vectorizes: Eigen's own
// are per value (half: one F16C instruction per value, or a branchy software path).
inline std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
inline float float_of(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
template <class S>
inline std::uint16_t raw_of(const S& value) {
  std::uint16_t raw;
  std::memcpy(&raw, &value, sizeof raw);
  return raw;
}
template <class S>
inline void store_raw(S* out, std::uint16_t raw) {
  std::memcpy(static_cast<void*>(out), &raw, sizeof raw);  // (S is trivially copyable in fact: Eigen declares constructors)
}

// Half without F16C: Eigen's software conversions, written with masks instead of
// branches (g++ does not if-convert the ternaries, and then does not vectorize).
inline std::uint32_t mask_if(bool condition) { return 0u - static_cast<std::uint32_t>(condition); }
inline std::uint32_t pick(std::uint32_t mask, std::uint32_t if_set, std::uint32_t if_clear) {
  return (if_set & mask) | (if_clear & ~mask);
}
inline float half_to_float_bits(std::uint16_t raw) {
  const std::uint32_t shifted_exponent = 0x7c00u << 13;
  std::uint32_t bits = (raw & 0x7fffu) << 13;
  const std::uint32_t exponent = shifted_exponent & bits;
  const std::uint32_t special = mask_if(exponent == shifted_exponent), tiny = mask_if(exponent == 0);  // Inf / NaN; zero / subnormal
  bits += ((127u - 15u) << 23) + (special & ((128u - 16u) << 23)) + (tiny & (1u << 23));
  // Renormalize a subnormal (exact: subtracting 2^-14 from a value in [2^-14, 2^-13)); the
  // others keep their bits (arithmetic on a signalling NaN would quiet it).
  const std::uint32_t renormalized = bits_of(float_of(bits) - float_of(113u << 23));
  return float_of(pick(tiny, renormalized, bits) | ((raw & 0x8000u) << 16));
}
inline std::uint16_t float_to_half_bits(float value) {
  const std::uint32_t f32_infinity = 255u << 23, f16_max = (127u + 16u) << 23;
  const std::uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  std::uint32_t bits = bits_of(value);
  const std::uint32_t sign = bits & 0x80000000u;
  bits ^= sign;
  const std::uint32_t special = pick(mask_if(bits > f32_infinity), 0x7e00u, 0x7c00u);  // NaN, or Inf / too large
  const std::uint32_t subnormal = bits_of(float_of(bits) + float_of(denorm_magic)) - denorm_magic;
  const std::uint32_t normal = (bits + 0xc8000fffu + ((bits >> 13) & 1u)) >> 13;
  const std::uint32_t finite = pick(mask_if(bits < (113u << 23)), subnormal, normal);
  return static_cast<std::uint16_t>(pick(mask_if(bits >= f16_max), special, finite) | (sign >> 16));
}

// Exact: every bfloat16 and half value is a float.
template <class S>
inline void widen(const S* in, compute_t<S>* out, index_t count) {
  if constexpr (std::is_same_v<S, Eigen::bfloat16>) {
    for (index_t i = 0; i < count; ++i) out[i] = float_of(std::uint32_t{raw_of(in[i])} << 16);
  } else if constexpr (std::is_same_v<S, Eigen::half>) {
    index_t i = 0;
#if defined(EIGEN_HAS_FP16_C)
    for (; i + 8 <= count; i += 8)
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    if (i < count) {  // the tail through a padded block (the scalar intrinsics are macros clang -Wpedantic rejects)
      alignas(16) std::uint16_t raw[8] = {};
      alignas(32) float wide[8];
      for (index_t k = 0; i + k < count; ++k) raw[k] = raw_of(in[i + k]);
      _mm256_store_ps(wide, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(raw))));
      for (index_t k = 0; i + k < count; ++k) out[i + k] = wide[k];
    }
#else
    for (; i < count; ++i) out[i] = half_to_float_bits(raw_of(in[i]));
#endif
  } else {
    for (index_t i = 0; i < count; ++i) out[i] = static_cast<compute_t<S>>(in[i]);
  }
}

// Round to nearest even (Eigen's conversions); NaN stays NaN, values beyond the
// type's range become +-Inf (half: |x| > 65504).
template <class S>
inline void narrow(const compute_t<S>* in, S* out, index_t count) {
  if constexpr (std::is_same_v<S, Eigen::bfloat16>) {
    for (index_t i = 0; i < count; ++i) {
      const std::uint32_t bits = bits_of(in[i]);
      const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
      const std::uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
      store_raw(out + i, static_cast<std::uint16_t>(nan ? ((bits >> 16) & 0x8000u) | 0x7fc0u : rounded));
    }
  } else if constexpr (std::is_same_v<S, Eigen::half>) {
    index_t i = 0;
#if defined(EIGEN_HAS_FP16_C)
    for (; i + 8 <= count; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), 0));
    if (i < count) {
      alignas(32) float wide[8] = {};
      alignas(16) std::uint16_t raw[8];
      for (index_t k = 0; i + k < count; ++k) wide[k] = in[i + k];
      _mm_store_si128(reinterpret_cast<__m128i*>(raw), _mm256_cvtps_ph(_mm256_load_ps(wide), 0));
      for (index_t k = 0; i + k < count; ++k) store_raw(out + i + k, raw[k]);
    }
#else
    for (; i < count; ++i) store_raw(out + i, float_to_half_bits(in[i]));
#endif
  } else {
    for (index_t i = 0; i < count; ++i) out[i] = S(in[i]);
  }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace detail
}  // namespace normnorm
