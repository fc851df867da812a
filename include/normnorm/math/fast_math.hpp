#pragma once
// Division-free log1p and expm1 for the Yeo-Johnson kernels, written once over
// the lane type V (lanes.hpp): V = float, double, xsimd::batch<float> or
// xsimd::batch<double>. The scalar instantiations run the same operations in
// the same order as the batch ones (same constants, same fused / unfused
// multiply-adds, see fmadd), so the scalar path is a faithful reference for
// the SIMD path: on the x86 builds tested (GCC and clang, SSE2 / AVX2 /
// AVX-512) the two agree bit for bit, and by construction always to within
// the documented ulp bounds.
//
// Only xsimd's public API is used: arithmetic, fma / fms, min / max,
// comparisons + select, bitwise_cast, batch_cast (int32 -> float only) and
// integer shifts. No division, no table, no int64 <-> double conversion (the
// double code converts with magic numbers: add 1.5 * 2^52 and reinterpret).
//
// Polynomial coefficients were fitted for this file by a weighted Remez
// exchange written from scratch in Python's `decimal` module (60 digits, no
// third-party code or coefficients), then rounded to the target precision.
// Each function's comment block gives its algorithm, how its coefficients were
// obtained and its MEASURED maximum error; the table in
// tests/test_fast_math.cpp checks exactly those claims.
//
// IEEE semantics required: -ffast-math (or -fassociative-math /
// -ffinite-math-only) would fold the exact error terms below to zero and drop
// the NaN / Inf handling.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/math/lanes.hpp"

#include "normnorm/detail/begin_simd_code.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::math {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace fast_math_detail {

// ---------------------------------------------------------------------------
// Lane-generic primitives. Each has a scalar branch that mirrors, operation for
// operation, what xsimd does for batches, so both paths round identically.
// ---------------------------------------------------------------------------

template <class T> struct int_of;
template <> struct int_of<float> { using s = std::int32_t; using u = std::uint32_t; };
template <> struct int_of<double> { using s = std::int64_t; using u = std::uint64_t; };

// The integer lane type with the same width as V's lanes (I = int32/int64/uint32/uint64).
template <class V, class I> struct int_lanes { using type = I; };
template <class T, class A, class I> struct int_lanes<xsimd::batch<T, A>, I> { using type = xsimd::batch<I, A>; };
template <class V, class I> using int_lanes_t = typename int_lanes<V, I>::type;

template <class IV, class V> NORMNORM_ALWAYS_INLINE IV to_bits(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) {
    IV i;
    std::memcpy(&i, &v, sizeof(V));
    return i;
  } else {
    return xsimd::bitwise_cast<IV>(v);
  }
}
template <class V, class IV> NORMNORM_ALWAYS_INLINE V from_bits(const IV& i) {
  if constexpr (std::is_arithmetic_v<V>) {
    V v;
    std::memcpy(&v, &i, sizeof(V));
    return v;
  } else {
    return xsimd::bitwise_cast<V>(i);
  }
}

// a * b + c and a * b - c. Batches use xsimd::fma / fms. In xsimd 8.1 these
// are single fused instructions on the fma3 / fma4 / NEON archs, but on
// AVX-512 and SSE2 they fall back to the operator expression x * y + z, which
// the compiler fuses only if it contracts across statements (GCC does by
// default for C++, -ffp-contract=fast; clang does not, -ffp-contract=on).
// The scalar branch copies whichever the batch path of the kernel's instruction
// set Arch does: std::fma when that arch fuses, else the product and the sum as
// two statements (contracted by exactly the compilers that contract the batch
// fallback). The two paths then round identically, which the tests check. A
// scalar lane type names no arch: the scalar tail of a SIMD kernel passes the
// kernel's, and the scalar path (scalar_arch) follows vector_arch, the
// translation unit's default architecture, as its reference role requires.
// Nothing below relies on fusion for correctness: every step that must be
// exact is exact either way.
template <class A>
constexpr bool batch_fma_is_fused() {
  return std::is_base_of<xsimd::fma3<xsimd::sse4_2>, A>::value || std::is_base_of<xsimd::fma3<xsimd::avx>, A>::value ||
         std::is_base_of<xsimd::fma3<xsimd::avx2>, A>::value || std::is_base_of<xsimd::fma4, A>::value ||
         std::is_base_of<xsimd::neon, A>::value;
}
template <class V, class Arch = lane_arch<V>> NORMNORM_ALWAYS_INLINE V fmadd(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) {
    if constexpr (batch_fma_is_fused<vector_arch<Arch>>()) {
      return std::fma(a, b, c);
    } else {
      const V product = a * b;
      return product + c;
    }
  } else {
    return xsimd::fma(a, b, c);
  }
}
template <class V, class Arch = lane_arch<V>> NORMNORM_ALWAYS_INLINE V fmsub(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) {
    if constexpr (batch_fma_is_fused<vector_arch<Arch>>()) {
      return std::fma(a, b, -c);
    } else {
      const V product = a * b;
      return product - c;
    }
  } else {
    return xsimd::fms(a, b, c);
  }
}

// Clamp that lets NaN through: max(lo, t) and min(hi, t) return their second
// operand when it is NaN (x86 maxps/minps return the second operand whenever
// either is NaN; NEON's fmax/fmin return NaN). The scalar branch copies that.
template <class V> NORMNORM_ALWAYS_INLINE V max_keep_nan(const V& lo, const V& t) {
  if constexpr (std::is_arithmetic_v<V>) return lo > t ? lo : t;
  else return xsimd::max(lo, t);
}
template <class V> NORMNORM_ALWAYS_INLINE V min_keep_nan(const V& hi, const V& t) {
  if constexpr (std::is_arithmetic_v<V>) return hi < t ? hi : t;
  else return xsimd::min(hi, t);
}

// Polynomial c[0] + c[1] x + ... + c[N-1] x^(N-1), fully unrolled. The H
// lowest-order coefficients are applied by Horner's rule (their rounding
// errors matter most); the tail c[H] + c[H+1] x + ... is evaluated as two
// interleaved Horner chains in x2 = x^2 (even and odd terms) joined by one
// fma. Same operation count as plain Horner, but a dependency chain about half
// as long, so out-of-order execution overlaps consecutive batches (this is
// what brings the degree-21 double log1p under 1 ns). H >= N - 1 is plain Horner.
template <std::size_t First, std::size_t Step, class Arch, class V, class T, std::size_t N, std::size_t... I>
NORMNORM_ALWAYS_INLINE V horner_steps(const V& x, const T (&c)[N], std::index_sequence<I...>) {
  constexpr std::size_t M = sizeof...(I) + 1;  // terms c[First], c[First + Step], ...
  V acc(c[First + Step * (M - 1)]);
  ((acc = fmadd<V, Arch>(acc, x, V(c[First + Step * (M - 2 - I)]))), ...);
  return acc;
}
// acc x^H + c[H-1] x^(H-1) + ... + c[0] by Horner steps.
template <class Arch, class V, class T, std::size_t N, std::size_t... J>
NORMNORM_ALWAYS_INLINE V horner_onto(V acc, const V& x, const T (&c)[N], std::index_sequence<J...>) {
  constexpr std::size_t H = sizeof...(J);
  ((acc = fmadd<V, Arch>(acc, x, V(c[H - 1 - J]))), ...);
  (void)x;
  return acc;
}
template <std::size_t H, class Arch, class V, class T, std::size_t N>
NORMNORM_ALWAYS_INLINE V polynomial(const V& x, const V& x2, const T (&c)[N]) {
  if constexpr (H + 1 >= N) {
    (void)x2;
    return horner_steps<0, 1, Arch>(x, c, std::make_index_sequence<N - 1>{});
  } else {
    constexpr std::size_t tail = N - H, n_even = (tail + 1) / 2, n_odd = tail / 2;
    const V even = horner_steps<H, 2, Arch>(x2, c, std::make_index_sequence<n_even - 1>{});
    const V odd = horner_steps<H + 1, 2, Arch>(x2, c, std::make_index_sequence<n_odd - 1>{});
    return horner_onto<Arch>(fmadd<V, Arch>(odd, x, even), x, c, std::make_index_sequence<H>{});
  }
}

// ---------------------------------------------------------------------------
// Constants. Q-coefficients: P(x) = x + x^2 Q(x), Q(x) = sum_j q[j] x^j, fitted
// by weighted minimax (see the function comments for the weights and ranges).
// ---------------------------------------------------------------------------
template <class T> struct consts;

template <> struct consts<float> {
  // ln 2 = ln2_hi + ln2_lo: ln2_hi has 16 significant bits, so k * ln2_hi is
  // exact for |k| <= 256; ln2_lo = (ln 2 - ln2_hi) rounded (residual 5.5e-14).
  static constexpr float ln2_hi = 0.693145751953125f;      // 0x1.62e4p-1
  static constexpr float ln2_lo = 1.428606765330187e-06f;  // 0x1.7f7d1cp-20
  static constexpr float log2e = 1.4426950216293335f;
  static constexpr float round_magic = 12582912.0f;        // 1.5 * 2^23
  static constexpr std::uint32_t exp_shift = 23;
  static constexpr std::uint32_t one_bits = 0x3F800000u;   // 1.0f
  // expm1: t is clamped to [-32, 88.7229]: below -17.33 the result rounds to -1,
  // above 88.72284 it overflows (the clamp keeps NaN). k is capped at 127 so
  // that 2^k stays finite; for t > 127.5 ln2 the reduced r then reaches 0.6933.
  static constexpr float expm1_lo = -32.0f;
  static constexpr float expm1_hi = 88.7229f;
  static constexpr float k_cap = 127.0f;
  static constexpr bool expm1_compensated = false;  // see expm1_fast
  static constexpr std::size_t log1p_horner = 1;  // 1 Horner step, then an even/odd split (shorter chain)
  static constexpr std::size_t expm1_horner = 1;  // likewise
  // log1p: Q degree 8 on f in [-0.25, 0.5]; weighted minimax error 4.5e-9 (2^-27.7).
  static constexpr float log1p_q[] = {
      -0.5f,                 0.3333340883255005f,   -0.2499975562095642f,
      0.1999167799949646f,   -0.1665945202112198f,  0.1449315994977951f,
      -0.13066424429416656f, 0.10180819034576416f,  -0.04288732632994652f};
  // expm1: Q degree 6 on r in [-0.34658, 0.6935]; relative minimax error 6.2e-10
  // (2^-30.6). Stored NEGATED: the code evaluates -Q(r).
  static constexpr float expm1_neg_q[] = {
      -0.5f,                   -0.1666666567325592f,     -0.041666701436042786f, -0.008333534002304077f,
      -0.0013881685445085168f, -0.00019762813462875783f, -2.8781509172404185e-05f};
};

template <> struct consts<double> {
  // ln2_hi has 42 significant bits: k * ln2_hi is exact for |k| <= 2048;
  // ln2_lo = (ln 2 - ln2_hi) rounded (residual 1.9e-31).
  static constexpr double ln2_hi = 0.693147180559890330187045037746429443359375;  // 0x1.62e42fefa38p-1
  static constexpr double ln2_lo = 5.497923018708371e-14;                        // 0x1.ef35793c7673p-45
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr std::uint64_t exp_shift = 52;
  static constexpr std::uint64_t one_bits = 0x3FF0000000000000ull;
  static constexpr double expm1_lo = -40.0;     // the result rounds to -1 below -37.43
  static constexpr double expm1_hi = 709.7828;  // it overflows above 709.78271289
  static constexpr double k_cap = 1023.0;
  static constexpr bool expm1_compensated = true;  // see expm1_fast
  static constexpr std::size_t log1p_horner = 1;  // 1 Horner step, then an even/odd split
  static constexpr std::size_t expm1_horner = 3;  // 3 Horner steps, then an even/odd split
  // log1p: Q degree 19 on f in [-0.25, 0.5]; weighted minimax error 5.9e-18 (2^-57.2).
  static constexpr double log1p_q[] = {
      -0.5,                  0.3333333333333417,   -0.2500000000000395,  0.19999999999673707,
      -0.16666666664544288,  0.14285714320236798,  -0.12500000279129103, 0.11111109731162572,
      -0.09999984054189183,  0.09090919813681808,  -0.08333784370679252, 0.07693068245129177,
      -0.07136949128570219,  0.06643908606373371,  -0.06264344158327063, 0.06104634510226991,
      -0.05935078380235646,  0.04935436705689519,  -0.027868884377502817, 0.007477189267243948};
  // expm1: Q degree 11 on r in [-0.34658, 0.6935]; relative minimax error 1.07e-18
  // (2^-59.7). Stored NEGATED: the code evaluates -Q(r).
  static constexpr double expm1_neg_q[] = {
      -0.5,                    -0.16666666666666677,    -0.04166666666666614,
      -0.008333333333325612,   -0.0013888888889204735,  -0.00019841269856759816,
      -2.4801586622640724e-05, -2.7557310417062548e-06, -2.7557924544415993e-07,
      -2.5049378984880207e-08, -2.070057772301572e-09,  -1.8825329443590216e-10};
};

}  // namespace fast_math_detail

// ===========================================================================
// log1p_nonneg(a) = log(1 + a) for a >= 0.
//
// Lane types: float, double, xsimd::batch<float>, xsimd::batch<double>.
// Domain: a >= 0, -0 and +Inf included. NaN -> NaN, +Inf -> +Inf, +-0 -> +-0,
//   a < 2^-p (subnormals too) -> a exactly. Negative a is outside the domain
//   (no trap, meaningless result).
//
// Algorithm (no division, no table):
//   u = fl(1 + a) = m 2^k with m in [0.75, 1.5), k >= 0, read off u's bits:
//   float: -k = (bits(0.75) + 2^23 - 1 - bits(u)) >> 23 (arithmetic shift),
//   converted with batch_cast<float>(int32); double: k = (bits(u) - bits(0.75))
//   >> 52 (logical), converted as -k = 2^52 - as_double(bits(2^52) | k).
//   Reduced argument, EXACT, which is what replaces the usual correction term
//   c / u (a division) for the rounding of 1 + a:
//       f = (1 + a) 2^-k - 1 = a 2^-k - (1 - 2^-k),
//   a 2^-k formed by subtracting k from a's exponent field (exact: a is normal
//   for k >= 1), 1 - 2^-k from the bits of 2^-k (it rounds to 1 for k > p + 1;
//   a min(., 1) catches k = 128 / 1024, where those bits wrap around to -Inf).
//   With m in [0.75, 1.5) every k >= 1 has
//   a >= 2^(k-1), so both terms are multiples of 2^-(p+1) and |f| <= 1/2:
//   f has no rounding error at all, FMA or not. (With the classic m in
//   [sqrt(1/2), sqrt 2) this fails for a in [0.414, 0.5).)
//   log1p(a) = k ln2 + log1p(f), f in [-0.25, 0.5], and
//       log1p(f) ~= f + f^2 Q(f),  Q of degree 8 (float) / 19 (double).
//   Q: q[0] = -1/2 fixed, the rest by weighted Remez exchange (our own script:
//   60-digit decimal arithmetic, 3000-point Chebyshev grid on
//   [-0.2500001, 0.5000001], coefficients rounded to nearest). Weight
//   1/log1p(f) for f > 0 (k = 0 there: relative error) and 1/(ln2 + log1p(f))
//   for f < 0 (reached only with k >= 1, where the result is at least that).
//   Weighted error of the rounded coefficients: 4.5e-9 (float), 5.9e-18 (double).
//   Both are evaluated as 1 Horner step around an even/odd split (half the
//   dependency chain). Float was plain Horner until the chain proved to be what
//   limits the fused transform (log1p then expm1 per element) on an AVX2 core,
//   whose reorder window holds too few batches of the long chain: the split
//   took that transform from 2.41 to 2.10 ns per element (AMD EPYC, float,
//   docs/benchmarks.md) and the worst error from 0.915 to 0.951 ulp (FMA).
//   Reconstruction: y = hi + lo, hi = fl(f + k ln2_hi) (k ln2_hi exact, ln2_hi
//   has 16 / 42 bits), lo = f^2 Q(f) + k ln2_lo + err with err = the exact
//   rounding error of hi (Fast2Sum). Without err, hi can land just above a
//   power of two with y just below it, costing a full ulp. The final select
//   passes +Inf and NaN through.
//
// MEASURED maximum error (vs. log1pl in long double; ulp of the exact result;
// FMA = GCC -march=native, which fuses; no-FMA = SSE2 build / clang -march=native):
//   float, exhaustive over all 2^31 non-negative floats:
//     [0, 1e4]: 0.95 ulp FMA, 0.96 no-FMA (worst near a = 0.48, f close to 1/2);
//     [1e4, FLT_MAX]: 0.53 ulp.  Mean 0.07 ulp on [0, 1e4].
//   double, 3e7 random (uniform, log-uniform, next to 1 + a = 1.5 2^k) per range:
//     [0, 1e4]: 0.93 ulp FMA, 0.94 no-FMA (worst near a = 0.48 again);
//     [1e4, DBL_MAX]: 0.51 ulp.  Mean 0.13 ulp on [0, 1e4].
//   Per-range bounds (0.5 to 1.0 ulp) are in tests/test_fast_math.cpp.
// Cost (AVX-512, g++ -O3 -march=native, one thread, core at 3.2 GHz, min of
// repeated runs over 4096 elements in L1; 2M-element streaming is within 10%):
//   float 0.33 ns = 1.07 cycles (xsimd::log1p 0.53); double 1.0 ns = 3.2
//   cycles (xsimd::log1p 1.40). At the 4.1 GHz of the project's perf notes:
//   0.26 / 0.78 ns.
// ===========================================================================
// Arch: the kernel's instruction set (lanes.hpp's lane_arch: a batch's own, else the default).
template <class V, class Arch = lane_arch<V>>
NORMNORM_ALWAYS_INLINE V log1p_nonneg(const V& a) {
  using namespace fast_math_detail;
  using T = typename lane_traits<V>::scalar;
  using C = consts<T>;
  using S = typename int_of<T>::s;
  using U = typename int_of<T>::u;
  using IU = int_lanes_t<V, U>;
  using IS = int_lanes_t<V, S>;
  constexpr U p = C::exp_shift;
  constexpr U bits_075 = (C::one_bits - (U(1) << p)) | (U(1) << (p - 1));  // 0.75

  const V u = a + V(T(1));
  const IU ubits = to_bits<IU>(u);
  const IU abits = to_bits<IU>(a);
  IU neg_k_field;  // (-k) << p, modulo 2^(bits)
  V neg_k;         // -k as a floating value (+0 when k = 0)
  if constexpr (std::is_same_v<T, float>) {
    // -k = ceil((bits(0.75) - bits(u)) / 2^23) = (bits(0.75) + 2^23 - 1 - bits(u)) >> 23 (arithmetic).
    const IU diff = IU(U(bits_075 + ((U(1) << p) - 1))) - ubits;
    IS nk;
    if constexpr (std::is_arithmetic_v<V>) nk = static_cast<S>(diff) >> p;
    else nk = xsimd::bitwise_cast<IS>(diff) >> static_cast<int32_t>(p);
    if constexpr (std::is_arithmetic_v<V>) {
      neg_k_field = static_cast<U>(nk) << p;
      neg_k = static_cast<T>(nk);
    } else {
      neg_k_field = xsimd::bitwise_cast<IU>(nk) << static_cast<int32_t>(p);
      neg_k = xsimd::batch_cast<T>(nk);
    }
  } else {
    // k = (bits(u) - bits(0.75)) >> 52 (logical; u >= 1 so this is non-negative);
    // -k = 2^52 - as_double(bits(2^52) | k): exact magic-number conversion, and +0 for k = 0.
    const IU ui = ubits - IU(bits_075);
    const IU k = ui >> static_cast<int32_t>(p);
    neg_k_field = IU(U(0)) - (ui & IU(~((U(1) << p) - 1)));
    constexpr U two52_bits = 0x4330000000000000ull;
    neg_k = V(T(4503599627370496.0)) - from_bits<V>(k | IU(two52_bits));
  }
  // a 2^-k (exponent-field subtraction; exact) and 1 - 2^-k (exact for k <= p + 1,
  // 1 beyond; the min catches k = 128 / 1024, where the bits of 2^-k wrap to -Inf).
  const V a_scaled = from_bits<V>(abits + neg_k_field);
  const V scale = from_bits<V>(IU(C::one_bits) + neg_k_field);
  const V one_minus_scale = min_keep_nan(V(T(1)), V(T(1)) - scale);
  const V f = a_scaled - one_minus_scale;
  const V f2 = f * f;
  const V q = polynomial<C::log1p_horner, Arch>(f, f2, C::log1p_q);
  // y = hi + lo, hi = fl(f + k ln2_hi) and lo = f^2 Q(f) + k ln2_lo + err, where
  // err = (f + k ln2_hi) - hi is recovered exactly (Fast2Sum: for k >= 1,
  // |k ln2_hi| >= ln2 > |f|; for k = 0, hi = f and err = 0). Without err, hi's
  // rounding costs up to 1 ulp of y when hi lands just above a power of two
  // and y just below it. k ln2_hi is exact, so contraction cannot change hi or err.
  // No unary minus anywhere: xsimd 8.1 negates AVX-512 batches as 0 - x, which
  // turns -0 into +0; negated constants keep a = -0 -> -0 on every path.
  const V k_hi = neg_k * V(-C::ln2_hi);                 // k ln2_hi, exact
  const V hi = k_hi + f;
  const V err = f - (hi - k_hi);                        // exact
  const V lo = fmadd<V, Arch>(f2, q, fmadd<V, Arch>(neg_k, V(-C::ln2_lo), err));  // f^2 Q(f) + k ln2_lo + err
  const V y = hi + lo;
  return where(a < V(std::numeric_limits<T>::infinity()), y, a);  // +Inf and NaN pass through
}

// ===========================================================================
// expm1_fast(t) = exp(t) - 1 for any t.
//
// Lane types: float, double, xsimd::batch<float>, xsimd::batch<double>.
// Special values: NaN -> NaN; +-0 -> +-0; tiny t (subnormals too) -> t exactly;
//   t > 88.72284 (float) / 709.78271 (double), +Inf included -> +Inf;
//   t < -17.33 (float) / -37.43 (double), -Inf included -> -1.
//
// Algorithm (no division, no table):
//   Clamp t to [-32, 88.7229] (float) / [-40, 709.7828] (double) with min/max
//   that keep NaN. k = min(round(t / ln2), 127 / 1023) by the magic-number
//   trick z = t log2e + 1.5 2^p (the low bits of z hold k; no float -> int
//   conversion); 2^k = as_float((bits(z) << p) + bits(1)). The cap keeps 2^k
//   finite; near overflow it lets r grow to 0.6933.
//   r_hi = t - k ln2_hi is exact (k ln2_hi exact, Sterbenz); r = r_hi - k ln2_lo,
//   and its rounding error ce = (r_hi - r) - k ln2_lo is kept.
//   expm1(r) ~= r + r^2 Q(r), Q of degree 6 (float) / 11 (double), q[0] = 1/2
//   fixed, the rest by Remez exchange for minimum relative error over
//   [-0.34658, 0.6935] (same script as log1p); relative error of the rounded
//   coefficients 6.2e-10 (float), 1.1e-18 (double). Float: 1 Horner step,
//   double: 3, around an even/odd split (a shorter chain; see log1p_nonneg).
//   Reconstruction: expm1(t) = 2^k (1 + r + r^2 Q + ce) - 1 summed as
//   head - 2^k nq, head = fl(2^k r - fl(1 - 2^k)), nq = -(r^2 Q + ce). The
//   double version also moves the rounding error of head (Fast2Sum) and the
//   part of 1 - 2^k lost for k >= 54 into the low part (see the code; float
//   skips this to meet its speed target). For k = 0, head = r exactly: tiny t,
//   subnormals and -0 come back unchanged.
//
// MEASURED maximum error (vs. expm1l in long double; ulp of the exact result;
// FMA / no-FMA builds as for log1p):
//   float, exhaustive over every float: 1.30 ulp FMA, 1.32 no-FMA (worst just
//     past t = 17, where 1 - 2^25 rounds; see the code); |t| <= 1: 1.19;
//     |t| >= 20: 1.16.  Mean 0.06 ulp on [-60, 60].
//   double, 3e7 random (uniform, log-uniform, next to t = (k + 1/2) ln2) per range:
//     [-60, 60]: 1.08 ulp FMA, 1.02 no-FMA (worst just above t = ln2/2, where
//     k = 1, r = -ln2/2 and 2^k (expm1(r) - r) is a quarter of the result);
//     |t| in [1, 700]: 0.73 ulp; beyond: 0.66 ulp.
//   Per-range bounds are in tests/test_fast_math.cpp.
// Cost (as for log1p_nonneg): float 0.31 ns = 0.98 cycles (xsimd::expm1 0.47);
//   double 0.91 ns = 2.9 cycles (xsimd::expm1 1.33). At 4.1 GHz: 0.24 / 0.71 ns.
// ===========================================================================
template <class V, class Arch = lane_arch<V>>
NORMNORM_ALWAYS_INLINE V expm1_fast(const V& t) {
  using namespace fast_math_detail;
  using T = typename lane_traits<V>::scalar;
  using C = consts<T>;
  using U = typename int_of<T>::u;
  using IU = int_lanes_t<V, U>;
  constexpr U p = C::exp_shift;

  const V tc = min_keep_nan(V(C::expm1_hi), max_keep_nan(V(C::expm1_lo), t));
  // z = round_magic + min(round(t / ln2), k_cap): the low bits of z hold k.
  const V z = min_keep_nan(V(C::round_magic + C::k_cap), fmadd<V, Arch>(tc, V(C::log2e), V(C::round_magic)));
  const V k = z - V(C::round_magic);
  // 2^k: bits(z) = bits(1.5 2^p) + k, and the magic's low 32 - p (float) /
  // 64 - p (double) bits are zero, so bits(z) << p == k << p (mod 2^width);
  // adding bits(1) gives the exponent field of 2^k.
  IU scale_bits;
  if constexpr (std::is_arithmetic_v<V>) scale_bits = (to_bits<IU>(z) << p) + IU(C::one_bits);
  else scale_bits = (to_bits<IU>(z) << static_cast<int32_t>(p)) + IU(C::one_bits);
  const V scale = from_bits<V>(scale_bits);  // 2^k

  // No unary minus anywhere (xsimd 8.1 negates AVX-512 batches as 0 - x, which
  // loses -0): negated constants and a negated polynomial instead.
  const V r_hi = fmadd<V, Arch>(k, V(-C::ln2_hi), tc);         // t - k ln2_hi, exact
  const V r = fmadd<V, Arch>(k, V(-C::ln2_lo), r_hi);          // t - k ln2, rounded
  const V neg_ce = fmadd<V, Arch>(k, V(C::ln2_lo), r - r_hi);  // minus the rounding error of r
  const V r2 = r * r;
  const V neg_q = polynomial<C::expm1_horner, Arch>(r, r2, C::expm1_neg_q);  // -Q(r)
  const V nq = fmadd<V, Arch>(r2, neg_q, neg_ce);              // -(expm1(r) - r) - (error of r)
  // expm1(t) = 2^k (1 + r - nq) - 1 = head - 2^k nq, head = fl(2^k r - nd_hi),
  // nd_hi = fl(1 - 2^k) (exact for k <= p + 1; 2^k r is exact). For k = 0 this
  // is head = r, so tiny and subnormal t come back unchanged and -0 stays -0.
  const V nd_hi = V(T(1)) - scale;
  const V head = fmsub<V, Arch>(scale, r, nd_hi);                  // 2^k (1 + r) - 1, rounded
  if constexpr (C::expm1_compensated) {
    // Double: two more corrections, folded into the low part so that the
    // result is rounded once at the end (plus the low part's small error):
    //  * e = -(1 - 2^k - nd_hi): 0 while 1 - 2^k is exact, -1 once it rounds
    //    to -2^k (k >= 54), so the -1 of expm1 survives there;
    //  * err = the rounding error of head, exact by Fast2Sum (2^k r is exact
    //    and |nd_hi| >= |2^k r| whenever nd_hi != 0).
    // They take the worst case from about 1.3 to 1.1 ulp. Float skips them
    // (5 operations, 20% of its time) to meet its speed target; its worst
    // case is 1.31 ulp, just past t = 17 where 1 - 2^25 rounds (with them:
    // 1.03 ulp, exhaustive).
    const V e = (nd_hi + scale) - V(T(1));
    const V err = fmsub<V, Arch>(scale, r, head + nd_hi);          // exact
    return head - fmsub<V, Arch>(scale, nq, e + err);
  } else {
    return head - scale * nq;
  }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
