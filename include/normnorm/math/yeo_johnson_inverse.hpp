#pragma once
// Inverses of the Yeo-Johnson transform given lambda, lane-generic (lanes.hpp):
//  * the TRUE transform (scipy.stats.yeojohnson, sklearn's PowerTransformer):
//      y = s expm1(eta L) / eta  (s L at eta = 0),  eta = lambda (h >= 0), 2 - lambda (h < 0),
//    yeo_johnson() is its forward, yeo_johnson_inverse() its inverse
//    (sklearn's PowerTransformer.inverse_transform, without standardization);
//  * the layer's shifted variant described by PowerTransform<T> (yeo_johnson.hpp):
//    exponent et = eta + sign(eta) sqrt(eps), or y = s L on a log side
//    (|eta| <= sqrt(eps)); power_transform_inverse() inverts power_transform().
// With e the side's exponent (eta or et) and m = |y|, the inverse is
//   L = log1p(e m) / e   (L = m when e = 0 or e m underflows),   h = sign(y) expm1(L),
// one log1p and one expm1 per element, never pow: relative accuracy holds for
// tiny |y| and for e near 0.
//
// Domain. The transform maps each side onto [0, inf) when e >= 0, but onto
// [0, -1/e) when e < 0 (lambda < 0 for h >= 0; lambda > 2 for h < 0, and the
// shifted exponents likewise). For |y| = -1/e exactly the inverse returns
// +-Inf (the limit); beyond, |y| > -1/e, it returns NaN (no h maps there).
// y = +-Inf gives +-Inf where e >= 0 and NaN where e < 0; NaN gives NaN.
// y = 0 (either sign) gives +0. Near the edge of the range the inverse is
// ill-conditioned by nature: dh/dy = (1 + |h|)^(1 - e) grows without bound.

#include "normnorm/detail/begin_simd_code.hpp"

#include <cmath>
#include <limits>

#include "normnorm/math/lanes.hpp"
#include "normnorm/math/yeo_johnson.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::math {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace inverse_detail {

// L = log1p(e m) / e for one side's exponent e (per lane), m = |y| >= 0.
template <class V>
inline V log_magnitude(const V& m, const V& e) {
  using T = typename lane_traits<V>::scalar;
  const auto log_side = e == V(T(0));
  const V u = e * m;
  V L = math::log1p(u) / math::where(log_side, V(T(1)), e);
  // m = 0, or e m below the normal range (log1p of a subnormal has lost digits): L = m (1 - u/2 + ...)
  L = math::where(math::abs(u) < V(std::numeric_limits<T>::min()), m, L);
  return math::where(log_side, m, L);   // e = 0 (also for m = Inf, where e m is NaN)
}

template <class V>
inline V signed_expm1(const V& y, const V& L) {
  using T = typename lane_traits<V>::scalar;
  const V mag = math::expm1(L);
  return math::where(y >= V(T(0)), mag, -mag);
}

}  // namespace inverse_detail

// The true Yeo-Johnson transform (no shift), f = L expm1(t) / t with t = eta L,
// so eta = 0 (the log side) needs no special case.
template <class V, class T>
inline V yeo_johnson(const V& h, T lambda) {
  const auto nonneg = h >= V(T(0));
  const V L = math::log1p(math::abs(h));
  const V eta = math::where(nonneg, V(lambda), V(T(2) - lambda));
  const V t = eta * L;
  const auto zero = t == V(T(0));
  V mag = L * (math::expm1(t) / math::where(zero, V(T(1)), t));
  mag = math::where(zero, L, mag);
  mag = math::where(eta == V(T(0)), L, mag);  // also h = +-Inf, where t is NaN
  return math::where(nonneg, mag, -mag);
}

// h with yeo_johnson(h, lambda) = y (see the domain notes above).
template <class V, class T>
inline V yeo_johnson_inverse(const V& y, T lambda) {
  const V e = math::where(y >= V(T(0)), V(lambda), V(T(2) - lambda));
  return inverse_detail::signed_expm1(y, inverse_detail::log_magnitude(math::abs(y), e));
}

// h with power_transform(h, pt) = y (yeo_johnson.hpp's shifted transform).
template <class V, class T>
inline V power_transform_inverse(const V& y, const PowerTransform<T>& pt) {
  if (pt.identity) return y;
  const auto nonneg = y >= V(T(0));
  // A log side has exponent 0 in PowerSide, which log_magnitude maps to L = m.
  const V e = math::where(nonneg, V(pt.nonneg.exponent), V(pt.neg.exponent));
  return inverse_detail::signed_expm1(y, inverse_detail::log_magnitude(math::abs(y), e));
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
