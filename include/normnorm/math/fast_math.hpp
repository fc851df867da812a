#pragma once
// Division-free log1p and expm1 for the Yeo-Johnson kernels, written once over
// the lane type V (lanes.hpp): V = float, double, xsimd::batch<float> or
// xsimd::batch<double>. The scalar instantiations run the same operations in
// the same order as the batch ones (same constants, same fma / no-fma choices),
// so the scalar path is a faithful reference for the SIMD path; the two agree
// bit for bit whenever both have (or both lack) hardware FMA, and always to
// within the documented ulp bounds.
//
// Only xsimd's public API is used: arithmetic, fma / fms / fnma, min / max,
// comparisons + select, bitwise_cast, batch_cast (int32 -> float only) and
// integer shifts. No division, no table, no int64 <-> double conversion (the
// double code converts with magic numbers: add 1.5 * 2^52 and reinterpret).
//
// Polynomial coefficients were fitted for this file by a weighted Remez
// exchange written from scratch in Python's `decimal` module (60 digits, no
// third-party code), then rounded to the target precision; the script, its
// invocation and the measurement programs are described in tests/test_fast_math.cpp.
// Each function's comment block gives the MEASURED maximum error; the table in
// tests/test_fast_math.cpp checks exactly those claims.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "normnorm/math/lanes.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::math {

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

template <class IV, class V> inline IV to_bits(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) {
    IV i;
    std::memcpy(&i, &v, sizeof(V));
    return i;
  } else {
    return xsimd::bitwise_cast<IV>(v);
  }
}
template <class V, class IV> inline V from_bits(const IV& i) {
  if constexpr (std::is_arithmetic_v<V>) {
    V v;
    std::memcpy(&v, &i, sizeof(V));
    return v;
  } else {
    return xsimd::bitwise_cast<V>(i);
  }
}

// a * b + c, a * b - c and c - a * b. Batches use xsimd::fma / fms / fnma. In
// xsimd 8.1 these are fused instructions on the fma3 archs (AVX2+FMA, ...) but
// on AVX-512 and SSE2 they fall back to the plain expression (x * y + z), which
// the compiler fuses only if it contracts (GCC's default -ffp-contract=fast in
// GNU mode, i.e. -std=gnu++17 as CMake passes it; not with -std=c++17). The
// scalar branch writes the same plain expression, so it rounds exactly like
// the AVX-512 / SSE2 batch path under either setting. Nothing below relies on
// fusion: every step that must be exact is exact either way.
template <class V> inline V fmadd(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) return a * b + c;
  else return xsimd::fma(a, b, c);
}
template <class V> inline V fmsub(const V& a, const V& b, const V& c) {
  if constexpr (std::is_arithmetic_v<V>) return a * b - c;
  else return xsimd::fms(a, b, c);
}
// Clamp that lets NaN through: max(lo, t) and min(hi, t) return their second
// operand when it is NaN (x86 maxps/minps return the second operand whenever
// either is NaN; NEON's fmax/fmin return NaN). The scalar branch copies that.
template <class V> inline V max_keep_nan(const V& lo, const V& t) {
  if constexpr (std::is_arithmetic_v<V>) return lo > t ? lo : t;
  else return xsimd::max(lo, t);
}
template <class V> inline V min_keep_nan(const V& hi, const V& t) {
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
template <std::size_t First, std::size_t Step, class V, class T, std::size_t N, std::size_t... I>
inline V horner_steps(const V& x, const T (&c)[N], std::index_sequence<I...>) {
  constexpr std::size_t M = sizeof...(I) + 1;  // terms c[First], c[First + Step], ...
  V acc(c[First + Step * (M - 1)]);
  ((acc = fmadd(acc, x, V(c[First + Step * (M - 2 - I)]))), ...);
  return acc;
}
// acc x^H + c[H-1] x^(H-1) + ... + c[0] by Horner steps.
template <class V, class T, std::size_t N, std::size_t... J>
inline V horner_onto(V acc, const V& x, const T (&c)[N], std::index_sequence<J...>) {
  constexpr std::size_t H = sizeof...(J);
  ((acc = fmadd(acc, x, V(c[H - 1 - J]))), ...);
  (void)x;
  return acc;
}
template <std::size_t H, class V, class T, std::size_t N>
inline V polynomial(const V& x, const V& x2, const T (&c)[N]) {
  if constexpr (H + 1 >= N) {
    (void)x2;
    return horner_steps<0, 1>(x, c, std::make_index_sequence<N - 1>{});
  } else {
    constexpr std::size_t tail = N - H, n_even = (tail + 1) / 2, n_odd = tail / 2;
    const V even = horner_steps<H, 2>(x2, c, std::make_index_sequence<n_even - 1>{});
    const V odd = horner_steps<H + 1, 2>(x2, c, std::make_index_sequence<n_odd - 1>{});
    return horner_onto(fmadd(odd, x, even), x, c, std::make_index_sequence<H>{});
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
  // expm1: clamp bounds. Below -32 the result rounds to -1 (it does from
  // -17.33 on); at 89 it is +Inf (it overflows from 88.7228 on).
  static constexpr float expm1_lo = -32.0f;
  static constexpr float expm1_hi = 89.0f;
  static constexpr std::size_t log1p_horner = 8;  // plain Horner
  static constexpr std::size_t expm1_horner = 5;  // plain Horner
  // log1p: Q degree 8 on f in [-0.25, 0.5]; weighted minimax error 4.5e-9 (2^-27.7).
  static constexpr float log1p_q[] = {
      -0.5f,                 0.3333340883255005f,   -0.2499975562095642f,
      0.1999167799949646f,   -0.1665945202112198f,  0.1449315994977951f,
      -0.13066424429416656f, 0.10180819034576416f,  -0.04288732632994652f};
  // expm1: Q degree 5 on r in [-0.34658, 0.34658]; relative minimax error 1.06e-9
  // (2^-29.8). (Degree 4 reaches only 1.5e-8, which near t = ln2/2 shows up as
  // 0.3 ulp.) Stored NEGATED: the code evaluates -Q(r).
  static constexpr float expm1_neg_q[] = {
      -0.5f, -0.1666666567325592f, -0.041666481643915176f, -0.0083334194496274f,
      -0.0013933245791122317f, -0.0001982412941288203f};
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
  static constexpr double expm1_lo = -40.0;  // result rounds to -1 from -37.43 on
  static constexpr double expm1_hi = 710.0;  // +Inf from 709.7828 on
  static constexpr std::size_t log1p_horner = 1;  // 3 Horner steps, then an even/odd split
  static constexpr std::size_t expm1_horner = 3;
  // log1p: Q degree 19 on f in [-0.25, 0.5]; weighted minimax error 5.9e-18 (2^-57.2).
  static constexpr double log1p_q[] = {
      -0.5,                  0.3333333333333417,   -0.2500000000000395,  0.19999999999673707,
      -0.16666666664544288,  0.14285714320236798,  -0.12500000279129103, 0.11111109731162572,
      -0.09999984054189183,  0.09090919813681808,  -0.08333784370679252, 0.07693068245129177,
      -0.07136949128570219,  0.06643908606373371,  -0.06264344158327063, 0.06104634510226991,
      -0.05935078380235646,  0.04935436705689519,  -0.027868884377502817, 0.007477189267243948};
  // expm1: Q degree 10 on r in [-0.34658, 0.34658]; relative minimax error 1.5e-18
  // (2^-59.2). Stored NEGATED (the code evaluates -Q(r)).
  static constexpr double expm1_neg_q[] = {
      -0.5,                    -0.16666666666666677,    -0.04166666666666658,
      -0.008333333333322165,   -0.0013888888888942631,  -0.00019841269884923526,
      -2.4801587198268943e-05, -2.7557245315760284e-06, -2.7557387024834406e-07,
      -2.510867816462819e-08,  -2.0878910979784788e-09};
};

}  // namespace fast_math_detail

// ===========================================================================
// log1p_nonneg(a) = log(1 + a) for a >= 0.
//
// Lane types: float, double, xsimd::batch<float>, xsimd::batch<double>.
// Domain: a >= 0 (including -0 and +Inf); NaN -> NaN, +Inf -> +Inf, +-0 -> +-0,
//   subnormal a -> a exactly. Negative a is outside the domain (garbage, no trap).
//
// Algorithm (no division, no table):
//   u = fl(1 + a). Write u = m 2^k with m in [0.75, 1.5) (k >= 0), taking k
//   from u's bits: -k = ((bits(0.75) + 2^p - 1) - bits(u)) >> p (arithmetic
//   shift, p = mantissa bits; for double a logical shift of bits(u) - bits(0.75)
//   gives k and a magic-number conversion gives -k as a double).
//   Reduced argument, EXACT (this is the step that replaces the usual
//   correction term c / u, which needs a division):
//       f = (1 + a) 2^-k - 1 = a 2^-k - (1 - 2^-k),
//   where a 2^-k is formed by subtracting k from a's exponent field (a is
//   normal whenever k >= 1) and 1 - 2^-k is exact for k <= p + 1. f is exact
//   because with m in [0.75, 1.5) we have a >= 2^(k-1), so both terms are
//   multiples of 2^-(p+1) and |f| <= 1/2: no rounding happens at all, whether
//   or not the target has FMA. (With the usual m in [sqrt(1/2), sqrt 2) this
//   fails for a in [0.414, 0.5), costing up to 0.7 ulp there.)
//   Then log1p(a) = k ln2 + log1p(f), f in [-0.25, 0.5], with
//       log1p(f) ~= f + f^2 Q(f),  Q of degree 8 (float) / 19 (double),
//   q[0] = -1/2 held fixed, the rest fitted by weighted Remez exchange over
//   [-0.2500001, 0.5000001]; weight 1/log1p(f) for f > 0 (k = 0: relative
//   error) and 1/(ln2 + log1p(f)) for f < 0 (only reached with k >= 1, where
//   the result is at least ln2 + log1p(f)). Coefficients rounded to nearest.
//   Reconstruction: y = (f - k ln2_hi) + (f^2 Q(f) - k ln2_lo), written with
//   -k so that a = -0 gives -0.
//   +Inf and NaN are routed around the polynomial by one compare + select.
//
// MEASURED maximum error (vs. log1pl in long double; ulp of the exact result):
//   float : 0.84 ulp over all 2^31 non-negative floats (exhaustive), the same on
//           [0, 1e4] (exhaustive).  Mean |error| 0.20 ulp.
//   double: 0.84 ulp on [0, 1e4] and 0.81 ulp on [1e4, DBL_MAX], 3e7 random
//           log-uniform + 3e7 uniform samples per range.
// Cost (AVX-512, 2 cores shared, ns per element; see tests/test_fast_math.cpp):
//   float ~0.15 (xsimd::log1p ~0.40), double ~0.42 (xsimd::log1p ~2.6).
// ===========================================================================
template <class V>
inline V log1p_nonneg(const V& a) {
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
  // a 2^-k (exponent-field subtraction; exact) and 1 - 2^-k (exact for small k;
  // clamped to 1 where 2^-k is not a normal number: there it rounds to 1 anyway).
  const V a_scaled = from_bits<V>(abits + neg_k_field);
  const V scale = from_bits<V>(IU(C::one_bits) + neg_k_field);
  const V one_minus_scale = min_keep_nan(V(T(1)), V(T(1)) - scale);
  const V f = a_scaled - one_minus_scale;
  const V f2 = f * f;
  const V q = polynomial<C::log1p_horner>(f, f2, C::log1p_q);
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
  const V lo = fmadd(f2, q, fmadd(neg_k, V(-C::ln2_lo), err));  // f^2 Q(f) + k ln2_lo + err
  const V y = hi + lo;
  return where(a < V(std::numeric_limits<T>::infinity()), y, a);  // +Inf and NaN pass through
}

// ===========================================================================
// expm1_fast(t) = exp(t) - 1 for any t.
//
// Lane types: float, double, xsimd::batch<float>, xsimd::batch<double>.
// Special values: NaN -> NaN; +-0 -> +-0; t > 88.7228 (float) / 709.7828
//   (double), including +Inf -> +Inf; t < -17.33 (float) / -37.43 (double),
//   including -Inf -> -1; |t| < 2^-25 (float) / 2^-54 (double) -> t, except
//   that a subnormal t may come back one subnormal step off (see the x 2 below).
//
// Algorithm (no division, no table):
//   Clamp t to [-32, 89] (float) / [-40, 710] (double) with max/min that keep
//   NaN. k = round(t / ln2) by the magic-number trick z = t log2e + 1.5 2^p
//   (the low bits of z hold k: no float -> int conversion), and 2^(k-1) is
//   built from z's bits as (bits(z) << p) + (bias - 1) << p.
//   r_hi = t - k ln2_hi is exact (Cody-Waite; k ln2_hi exact and Sterbenz);
//   r = r_hi - k ln2_lo, and its rounding error ce = (r_hi - r) - k ln2_lo is
//   kept (this alone removes up to 0.5 ulp from the large-|t| results).
//   expm1(r) ~= r + r^2 Q(r), Q of degree 4 (float) / 10 (double), q[0] = 1/2
//   held fixed, the rest fitted by Remez exchange for minimum relative error
//   over [-0.34658, 0.34658] (ln2/2 plus slack for a k rounded without FMA).
//   Reconstruction, in halves to keep 2^k finite up to k = 128 / 1024:
//       X = 2^(k-1) r - (1/2 - 2^(k-1)) - 2^(k-1) nq,  nq = -(r^2 Q(r) + ce),
//       expm1(t) = 2 X.
//   The first two terms combine exactly or nearly so; the order is chosen so
//   that t = -0 gives -0. Because r is halved before the final doubling, a
//   subnormal t with an odd last bit rounds by one subnormal step.
//
// MEASURED maximum error (vs. expm1l in long double; ulp of the exact result):
//   float : 0.87 ulp over all floats in [-104, 89] (exhaustive: every finite
//           float, results of -1 and +Inf included), 0.87 on [-60, 60].
//   double: 0.89 ulp on [-60, 60] and on [-745, 710], 3e7 uniform + 3e7
//           log-uniform random samples per range.
// Cost (AVX-512, ns per element): float ~0.13 (xsimd::expm1 ~0.33),
//   double ~0.30 (xsimd::expm1 ~0.9).
// ===========================================================================
template <class V>
inline V expm1_fast(const V& t) {
  using namespace fast_math_detail;
  using T = typename lane_traits<V>::scalar;
  using C = consts<T>;
  using U = typename int_of<T>::u;
  using IU = int_lanes_t<V, U>;
  constexpr U p = C::exp_shift;

  const V tc = min_keep_nan(V(C::expm1_hi), max_keep_nan(V(C::expm1_lo), t));
  const V z = fmadd(tc, V(C::log2e), V(C::round_magic));
  const V k = z - V(C::round_magic);
  // 2^(k-1): bits(z) = bits(1.5 2^p) + k, and the magic's low 32 - p (float) /
  // 64 - p (double) bits are zero, so bits(z) << p == k << p (mod 2^width);
  // adding bits(1/2) gives the exponent field of 2^(k-1).
  const IU half_bias = IU(C::one_bits - (U(1) << p));  // bits(0.5)
  IU scale_bits;
  if constexpr (std::is_arithmetic_v<V>) scale_bits = (to_bits<IU>(z) << p) + half_bias;
  else scale_bits = (to_bits<IU>(z) << static_cast<int32_t>(p)) + half_bias;
  const V half_scale = from_bits<V>(scale_bits);  // 2^(k-1)

  // No unary minus anywhere (xsimd 8.1 negates AVX-512 batches as 0 - x, which
  // loses -0): negated constants and a negated polynomial instead.
  const V r_hi = fmadd(k, V(-C::ln2_hi), tc);         // t - k ln2_hi, exact
  const V r = fmadd(k, V(-C::ln2_lo), r_hi);          // t - k ln2, rounded
  const V neg_ce = fmadd(k, V(C::ln2_lo), r - r_hi);  // minus the rounding error of r
  const V r2 = r * r;
  const V neg_q = polynomial<C::expm1_horner>(r, r2, C::expm1_neg_q);  // -Q(r)
  const V nq = fmadd(r2, neg_q, neg_ce);              // -(expm1(r) - r) - (error of r)
  // X = 2^(k-1) (1 + r - nq) - 1/2 = head + low, summed once at the end:
  //  * 1/2 - 2^(k-1) = nd_hi + nd_lo with nd_hi = fl(1/2 - 2^(k-1)) and
  //    nd_lo = -e: e is 0 while 1/2 - 2^(k-1) is exact (k <= 24 / 53) and -1/2
  //    once it rounds to -2^(k-1), so the -1 of expm1 survives for large k;
  //  * head = fl(2^(k-1) r - nd_hi), and its rounding error err is recovered
  //    exactly by Fast2Sum (|nd_hi| >= |2^(k-1) r| whenever nd_hi != 0, and
  //    2^(k-1) r is exact), so the result is rounded once, at x, plus the
  //    small error of the low part.
  const V nd_hi = V(T(0.5)) - half_scale;
  const V e = (nd_hi + half_scale) - V(T(0.5));
  const V head = fmsub(half_scale, r, nd_hi);                     // 2^(k-1) (1 + r) - 1/2, rounded
  const V err = fmsub(half_scale, r, head + nd_hi);               // exact
  const V neg_low = fmsub(half_scale, nq, e + err);               // -(2^(k-1)(expm1(r) - r + ce) + nd_lo + err)
  const V x = head - neg_low;
  return x + x;
}

}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
