#pragma once
// Options::evaluation_map = polynomial (float): the batch forms' fixed
// per-channel map out = gamma y(h) + beta, h = (x - mean) rstd, evaluated by a
// piecewise polynomial instead of log1p and expm1 (docs/math.md, "Evaluation map").
//
// Per side of h = 0 (the two sides have different exponents), 1 + |h| in [1, 16)
// is cut into 16 segments, quarters of each octave, so the segment index is
// read off the float's bits: (bits(1 + |h|) >> 21) - 4 * 127. On each segment,
// y is its degree-6 Taylor polynomial around the segment's centre a_c, in
// d = |h| - a_c, with the derivatives in closed form (for y = s expm1(et L) / et:
// y^(k) = s (et - 1) ... (et - k + 1) (1 + a)^(et - k); et = 0 is the log side),
// gamma, the side's sign and beta folded in. |d| / (1 + a_c) <= 1/9, so the
// remainder is below |binom(et - 1, 6)| (1/9)^7 (1 + |y|)-ish: tests/test_polynomial_map.cpp
// measures it. Values with 1 + |h| >= 16 (or NaN) take the exact map.
//
// The tables (1 KiB per channel) are built in double from the running statistics
// and affine parameters, and kept in the EvaluationCache with those inputs: a
// cache reused with unchanged parameters (inference) rebuilds nothing.

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "normnorm/context.hpp"
#include "normnorm/math/yeo_johnson.hpp"
#include "normnorm/running_stats.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace polynomial_map {

inline constexpr int segments = 16;           // per side
inline constexpr int entries = 2 * segments;  // entry = side * 16 + segment (side 1: h < 0)
inline constexpr int degree = 6;
inline constexpr int arrays = degree + 2;     // coefficients c0 .. c6, then the centres a_c
inline constexpr int table_size = arrays * entries;  // floats per channel
inline constexpr float limit = 16.0f;         // 1 + |h| below this uses the table
// The running lambdas whose tables are validated (tests/test_polynomial_map.cpp:
// max error 7.8e-7 (1 + |y|) at the ends). Farther out the Taylor remainder grows
// with |binom(et - 1, 6)|, so those channels keep the exact map.
inline constexpr double lambda_min = -2.0, lambda_max = 4.0;
inline bool covers_lambda(double lambda) { return lambda >= lambda_min && lambda <= lambda_max; }  // false for NaN

// One channel's table: table[k * entries + entry].
inline void build_channel_table(double lambda, double sqrt_eps, double gamma, double beta, float* table) {
  const auto transform = math::PowerTransform<double>::make(lambda, sqrt_eps, true);
  for (int side = 0; side < 2; ++side) {
    const math::PowerSide<double>& power = side == 0 ? transform.nonneg : transform.neg;
    const double et = power.is_log ? 0.0 : power.exponent;
    const double scale = side == 0 ? gamma : -gamma;
    for (int segment = 0; segment < segments; ++segment) {
      const double octave = std::ldexp(1.0, segment / 4);
      const double lower = octave * (1.0 + 0.25 * (segment % 4)), upper = lower + 0.25 * octave;
      const double centre = 0.5 * (lower + upper);  // of 1 + |h|
      const double log_centre = std::log(centre);
      const double y = power.is_log ? log_centre : std::expm1(et * log_centre) / et;
      const int entry = side * segments + segment;
      table[entry] = static_cast<float>(scale * y + beta);
      // Taylor coefficients y^(k) / k! = (et - 1) ... (et - k + 1) centre^(et - k) / k!.
      double coefficient = std::exp(et * log_centre) / centre;  // k = 1
      for (int k = 1; k <= degree; ++k) {
        table[k * entries + entry] = static_cast<float>(scale * coefficient);
        coefficient *= (et - k) / (centre * (k + 1));
      }
      table[(degree + 1) * entries + entry] = static_cast<float>(centre - 1.0);
    }
  }
}

// The segment entry of h (side and segment); meaningful where covers(h).
template <class V>
inline auto entry_of(const V& h, const V& a) {
  using T = typename math::lane_traits<V>::scalar;
  static_assert(std::is_same_v<T, float>, "the polynomial map is float only");
  const V u = a + V(1.0f);
  if constexpr (std::is_arithmetic_v<V>) {
    std::int32_t u_bits, h_bits;
    std::memcpy(&u_bits, &u, sizeof u_bits);
    std::memcpy(&h_bits, &h, sizeof h_bits);
    return ((u_bits >> 21) - 4 * 127) + ((h_bits >> 31) & segments);
  } else {
    using I = xsimd::batch<std::int32_t, typename V::arch_type>;
    return ((xsimd::bitwise_cast<I>(u) >> 21) - I(4 * 127)) + ((xsimd::bitwise_cast<I>(h) >> 31) & I(segments));
  }
}

// sum_k c_k d^k from coefficient arrays picked by `pick(k)`, fused as the kernel's
// instruction set Arch fuses (fast_math.hpp's fmadd).
template <class Arch, class V, class Pick>
inline V horner(const V& d, Pick&& pick) {
  V result = pick(degree);
  for (int k = degree - 1; k >= 0; --k) result = math::fast_math_detail::fmadd<V, Arch>(result, d, pick(k));
  return result;
}

}  // namespace polynomial_map

namespace pm = polynomial_map;

// One channel's map, ready to apply to lanes of h. On AVX-512 the table (two
// registers per array) is held in registers and each coefficient is one
// two-source permute; on AVX2 four one-source permutes and two blends; SSE gathers
// (xsimd emulates), the scalar path indexes.
// Arch: the kernel's instruction set (a scalar V serves a SIMD kernel's tail too).
template <class V, class Arch = math::lane_arch<V>>
class PolynomialChannel {
 public:
  explicit PolynomialChannel(const float* table) : table_(table) {
    if constexpr (uses_permutes)
      for (int k = 0; k < pm::arrays; ++k) {
        low_[k] = V::load_unaligned(table + k * pm::entries);
        high_[k] = V::load_unaligned(table + k * pm::entries + 16);
      }
  }

  V operator()(const V& h) const {
    const V a = math::abs(h);
    const auto entry = pm::entry_of(h, a);
    if constexpr (std::is_arithmetic_v<V>) {
      const float* at = table_ + entry;
      return pm::horner<Arch>(a - at[(pm::degree + 1) * pm::entries], [&](int k) { return at[k * pm::entries]; });
#if XSIMD_WITH_AVX512F
    } else if constexpr (uses_permutes) {
      const __m512i index = entry;
      auto pick = [&](int k) { return V(_mm512_permutex2var_ps(low_[k], index, high_[k])); };
      return pm::horner<Arch>(a - pick(pm::degree + 1), pick);
#endif
#if XSIMD_WITH_AVX2
    } else if constexpr (avx2()) {
      // Four 8-entry permutes (vpermps reads the index's low 3 bits) and two blends on
      // bits 3 and 4 of the entry (moved to the sign bit, which blendv reads): the
      // gathers' values, faster (a gather of 8 floats is slow on many AVX2 CPUs).
      const __m256i index = entry;
      const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(index, 28));
      const __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(index, 27));
      auto pick = [&](int k) {
        const float* array = table_ + k * pm::entries;
        const __m256 q0 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(array), index);
        const __m256 q1 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(array + 8), index);
        const __m256 q2 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(array + 16), index);
        const __m256 q3 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(array + 24), index);
        return V(_mm256_blendv_ps(_mm256_blendv_ps(q0, q1, bit3), _mm256_blendv_ps(q2, q3, bit3), bit4));
      };
      return pm::horner<Arch>(a - pick(pm::degree + 1), pick);
#endif
    } else {
      auto pick = [&](int k) { return V::gather(table_ + k * pm::entries, entry); };
      return pm::horner<Arch>(a - pick(pm::degree + 1), pick);
    }
  }

  // Whether every lane is inside the table (else the exact map serves them).
  static bool covers(const V& h) {
    const V u = math::abs(h) + V(1.0f);
    if constexpr (std::is_arithmetic_v<V>) return u < pm::limit;
    else return xsimd::all(u < V(pm::limit));
  }

 private:
  static constexpr bool avx512() {
    if constexpr (std::is_arithmetic_v<V>) return false;
    else return std::is_base_of_v<xsimd::avx512f, typename V::arch_type>;
  }
  static constexpr bool avx2() {  // 8 float lanes (AVX2 without AVX-512)
    if constexpr (std::is_arithmetic_v<V>) return false;
    else return std::is_base_of_v<xsimd::avx2, typename V::arch_type> && V::size == 8;
  }
  static constexpr bool uses_permutes = avx512();
  const float* table_;
  V low_[pm::arrays], high_[pm::arrays];
};

// Builds every channel's table into the cache, from its lambdas and the affine parameters.
template <class T>
inline void build_polynomial_tables(EvaluationCache<T>& cache, double eps, const T* weight, const T* bias) {
  static_assert(std::is_same_v<T, float>, "the polynomial map is float only");
  cache.polynomial_tables.resize(static_cast<std::size_t>(cache.channels * pm::table_size));
  const double sqrt_eps = std::sqrt(eps);
  for (index_t c = 0; c < cache.channels; ++c)
    pm::build_channel_table(cache.lambda[static_cast<std::size_t>(c)], sqrt_eps, weight ? double(weight[c]) : 1.0,
                            bias ? double(bias[c]) : 0.0, cache.polynomial_tables.data() + c * pm::table_size);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
