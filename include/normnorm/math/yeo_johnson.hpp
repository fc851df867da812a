#pragma once
// The Yeo-Johnson power transform of a standardized value h, its derivatives,
// and the per-element terms of the one-step lambda estimate. All lane-generic
// (see lanes.hpp). Names follow docs/math.md:
//   a = |h|, L = log1p(a), s = sign(h) with sign(0) = +1,
//   eta = lambda (h >= 0) or 2 - lambda (h < 0), et = eta + sign(eta) sqrt(eps),
//   y = s expm1(et L) / et, or s L when |eta| <= sqrt(eps).

#include <cmath>
#include <limits>

#include "normnorm/math/fast_math.hpp"
#include "normnorm/math/lanes.hpp"

#include "normnorm/detail/begin_simd_code.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::math {
NORMNORM_TARGET_NAMESPACE_BEGIN

// The two transcendentals of every kernel. The SIMD path uses fast_math.hpp's
// division-free versions (max 1.31 ulp; about 0.65x xsimd's time), the scalar
// path the C library's: the scalar path stays the independent reference.
template <class V> NORMNORM_ALWAYS_INLINE V log1p_of_magnitude(const V& a) {  // a = |h| >= 0
  if constexpr (std::is_arithmetic_v<V>) return std::log1p(a);
  else return log1p_nonneg(a);
}
template <class V> NORMNORM_ALWAYS_INLINE V expm1_of_exponent(const V& t) {
  if constexpr (std::is_arithmetic_v<V>) return std::expm1(t);
  else return expm1_fast(t);
}

// One side (h >= 0 or h < 0) of a group's transform: its shifted exponent.
template <class T>
struct PowerSide {
  T exponent = T(1);       // et
  T inv_exponent = T(1);   // 1 / et
  bool is_log = false;     // |eta| <= sqrt(eps): y = s L
};

// A group's transform, fixed once its lambda is known.
template <class T>
struct PowerTransform {
  PowerSide<T> nonneg, neg;
  bool identity = false;  // power transform switched off: y = h

  static PowerTransform make(double lambda, double sqrt_eps, bool enabled) {
    PowerTransform transform;
    transform.identity = !enabled;
    transform.nonneg = side(lambda, sqrt_eps);
    transform.neg = side(2.0 - lambda, sqrt_eps);
    return transform;
  }
  bool any_log() const { return nonneg.is_log || neg.is_log; }

 private:
  static PowerSide<T> side(double eta, double sqrt_eps) {
    PowerSide<T> s;
    const double shifted = eta + (eta >= 0 ? sqrt_eps : -sqrt_eps);
    // An exponent so small that 1 / et overflows T (eps = 0 and a denormal lambda): there
    // expm1(et L) / et equals L to far below T's precision, so the log side is exact.
    s.is_log = std::abs(eta) <= sqrt_eps || std::abs(shifted) * static_cast<double>(std::numeric_limits<T>::max()) < 1.0;
    s.exponent = s.is_log ? T(0) : T(shifted);
    s.inv_exponent = s.is_log ? T(0) : T(1.0 / shifted);
    return s;
  }
};

// The transforms of one batch's groups, one per lane (a block of channels-last
// channels, engine/column_forward.hpp): each side's exponent, its inverse and its
// log flag (1 or 0) per lane. Lanes past `count` take the identity's parameters.
template <class B>
struct PowerTransformLanes {
  struct Side {
    B exponent, inv_exponent, is_log;
  };
  Side nonneg, neg;
  bool identity = false, any_log_lane = false;
  bool any_log() const { return any_log_lane; }

  template <class T>
  static PowerTransformLanes of(const PowerTransform<T>* groups, index_t count) {
    constexpr index_t lanes = lane_traits<B>::width;
    alignas(64) T values[6][lanes];
    PowerTransformLanes result;
    result.identity = groups[0].identity;
    for (index_t j = 0; j < lanes; ++j) {
      const PowerTransform<T> pt = j < count ? groups[j] : PowerTransform<T>{};
      values[0][j] = pt.nonneg.exponent;
      values[1][j] = pt.nonneg.inv_exponent;
      values[2][j] = T(pt.nonneg.is_log);
      values[3][j] = pt.neg.exponent;
      values[4][j] = pt.neg.inv_exponent;
      values[5][j] = T(pt.neg.is_log);
      result.any_log_lane = result.any_log_lane || pt.any_log();
    }
    result.nonneg = {B::load_aligned(values[0]), B::load_aligned(values[1]), B::load_aligned(values[2])};
    result.neg = {B::load_aligned(values[3]), B::load_aligned(values[4]), B::load_aligned(values[5])};
    return result;
  }
};

// y = transform(h). One log1p and one expm1 per element, never pow: for small
// |h| pow(1 + a, et) - 1 loses all relative accuracy, expm1(et L) keeps it.
// A side's is_log as lanes: one flag for the group, or one per lane (PowerTransformLanes).
template <class V>
NORMNORM_ALWAYS_INLINE V log_flag(bool is_log) {
  return V(typename lane_traits<V>::scalar(is_log));
}
template <class V>
NORMNORM_ALWAYS_INLINE V log_flag(const V& is_log) {
  return is_log;
}

// PT: a group's PowerTransform<T>, or PowerTransformLanes (one group per lane, rows of
// channels-last memory): the same expressions either way, so the same bits per element.
template <class V, class PT>
NORMNORM_ALWAYS_INLINE V power_transform(const V& h, const PT& pt) {
  using T = typename lane_traits<V>::scalar;
  if (pt.identity) return h;
  const auto nonneg = h >= V(T(0));
  const V L = log1p_of_magnitude(math::abs(h));
  const V et = where(nonneg, V(pt.nonneg.exponent), V(pt.neg.exponent));
  const V inv_et = where(nonneg, V(pt.nonneg.inv_exponent), V(pt.neg.inv_exponent));
  V magnitude = expm1_of_exponent(et * L) * inv_et;
  if (pt.any_log()) {
    const V log_side = where(nonneg, log_flag<V>(pt.nonneg.is_log), log_flag<V>(pt.neg.is_log));
    magnitude = where(log_side != V(T(0)), L, magnitude);
  }
  return where(nonneg, magnitude, -magnitude);
}

// y together with its derivatives: psi_h = dy/dh, psi_l = dy/dlambda.
template <class V>
struct TransformDerivatives {
  V y, psi_h, psi_l;
};

// psi_l = (E (t - 1) + 1) / et^2 with t = et L and E = exp(t). For small |t| the
// numerator cancels (it is t^2/2 + ...), so there we sum its series instead:
//   psi_l = L^2 sum_{k>=2} (k-1)/k! t^(k-2); up to k = 10 the truncation is below 1e-16 for |t| < 0.05.
template <class V, class T>
NORMNORM_ALWAYS_INLINE V exponent_derivative(const V& t, const V& L, const V& em1, const V& inv_et) {
  const V E = em1 + V(T(1));
  const V direct = (t * E - em1) * inv_et * inv_et;
  V series = V(T(9.0 / 3628800.0));
  series = series * t + V(T(8.0 / 362880.0));
  series = series * t + V(T(7.0 / 40320.0));
  series = series * t + V(T(6.0 / 5040.0));
  series = series * t + V(T(5.0 / 720.0));
  series = series * t + V(T(4.0 / 120.0));
  series = series * t + V(T(3.0 / 24.0));
  series = series * t + V(T(2.0 / 6.0));
  series = series * t + V(T(0.5));
  series = series * L * L;
  return where(math::abs(t) < V(T(0.05)), series, direct);
}

// What every per-element formula of h starts from; computed once per element.
template <class V>
struct Magnitude {
  V h, a, L, inv_1pa;  // h, |h|, log1p(|h|), 1 / (1 + |h|)
};

template <class V>
NORMNORM_ALWAYS_INLINE Magnitude<V> magnitude_of(const V& h) {
  using T = typename lane_traits<V>::scalar;
  const V a = math::abs(h);
  return {h, a, log1p_of_magnitude(a), V(T(1)) / (V(T(1)) + a)};
}

template <class V, class PT>
NORMNORM_ALWAYS_INLINE TransformDerivatives<V> power_transform_derivatives(const Magnitude<V>& m, const PT& pt) {
  using T = typename lane_traits<V>::scalar;
  if (pt.identity) return {m.h, V(T(1)), V(T(0))};
  const auto nonneg = m.h >= V(T(0));
  const V et = where(nonneg, V(pt.nonneg.exponent), V(pt.neg.exponent));
  const V inv_et = where(nonneg, V(pt.nonneg.inv_exponent), V(pt.neg.inv_exponent));
  const V t = et * m.L;
  const V em1 = expm1_of_exponent(t);
  V magnitude = em1 * inv_et;
  // (1 + a)^(et - 1) = exp(t) / (1 + a). For t >= -1, expm1(t) + 1 is exp(t) within
  // about 3 ulp (|expm1(t)| / exp(t) <= e - 1 amplifies expm1's error at most that
  // much), and it saves an exp per element. Below, expm1(t) + 1 loses its digits (none
  // are left under about -16 in float), so those lanes take exp itself; t < -1 needs a
  // negative exponent (lambda > 2 on the negative side or < 0 on the other), so most
  // batches never evaluate it.
  V exp_t = em1 + V(T(1));
  const auto far_negative = t < V(T(-1));
  if (any_lane(far_negative)) exp_t = where(far_negative, math::exp(t), exp_t);
  V psi_h = exp_t * m.inv_1pa;
  V psi_l = exponent_derivative<V, T>(t, m.L, em1, inv_et);
  if (pt.any_log()) {
    const auto log_side = where(nonneg, log_flag<V>(pt.nonneg.is_log), log_flag<V>(pt.neg.is_log)) != V(T(0));
    magnitude = where(log_side, m.L, magnitude);
    psi_h = where(log_side, m.inv_1pa, psi_h);
    psi_l = where(log_side, V(T(0)), psi_l);
  }
  return {where(nonneg, magnitude, -magnitude), psi_h, psi_l};
}

template <class V, class PT>
NORMNORM_ALWAYS_INLINE TransformDerivatives<V> power_transform_derivatives(const V& h, const PT& pt) {
  return power_transform_derivatives(magnitude_of(h), pt);
}

// Per-element terms of the lambda estimate (docs/math.md, "Lambda"):
//   hd = h d, sL = s L, d = (1 + a) L - a, dd = d^2, he = h e = a ((1 + a) L^2 - 2 d).
template <class V>
struct LambdaTerms {
  V hd, sL, d, dd, he;
};

template <class V, class T>
NORMNORM_ALWAYS_INLINE LambdaTerms<V> lambda_terms(const V& h) {
  const auto nonneg = h >= V(T(0));
  const V a = math::abs(h);
  const V L = log1p_of_magnitude(a);
  const V one_plus_a = V(T(1)) + a;
  // Products rounded before their subtraction (rounded_term, lanes.hpp): these feed the
  // lambda estimate's sums, which must be the same bits wherever the group is walked.
  const V one_plus_a_L = rounded_term(one_plus_a * L);
  const V d = one_plus_a_L - a;
  return {h * d, where(nonneg, L, -L), d, d * d, a * (rounded_term(one_plus_a_L * L) - V(T(2)) * d)};
}

// Lambda's sensitivity to h_j, times the group size M (docs/math.md, "Backward"):
//   M dlambda_j = k_g1 dg1_j + k_g2 dg2_j, with
//   M dg1_j = d + a L - 1/(1 + a),  M dA_j = d + a L,
//   M dg2_j = s ((1 + 2a) L^2 - 2 d + 2 (d - D) L) - 4 A (M dA_j).
// k_g1 = -alpha / (g2 + c), k_g2 = alpha g1 / (g2 + c)^2 (order 2); k_g1 = -alpha, k_g2 = 0 (order 1).
template <class T>
struct LambdaSensitivity {
  T k_g1 = T(0), k_g2 = T(0), A = T(0), D = T(0);
};

// K: a group's LambdaSensitivity<T>, or LambdaSensitivity<batch> with one group per lane.
template <class V, class K>
NORMNORM_ALWAYS_INLINE V lambda_sensitivity(const Magnitude<V>& m, const K& k) {
  using T = typename lane_traits<V>::scalar;
  const auto nonneg = m.h >= V(T(0));
  const V one_plus_a = V(T(1)) + m.a;
  const V d = one_plus_a * m.L - m.a;
  const V dA = d + m.a * m.L;
  const V dg1 = dA - m.inv_1pa;
  const V inner = (one_plus_a + m.a) * m.L * m.L - V(T(2)) * d + V(T(2)) * (d - V(k.D)) * m.L;
  const V dB = where(nonneg, inner, -inner);
  const V dg2 = dB - V(T(4) * k.A) * dA;
  return V(k.k_g1) * dg1 + V(k.k_g2) * dg2;
}

template <class V, class K>
NORMNORM_ALWAYS_INLINE V lambda_sensitivity(const V& h, const K& k) {
  return lambda_sensitivity(magnitude_of(h), k);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
