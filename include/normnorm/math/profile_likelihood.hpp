#pragma once
// Per-element pieces of the Yeo-Johnson profile likelihood in lambda (issue 7,
// docs/lambda-search.md). All lane-generic (lanes.hpp): V is T or xsimd::batch<T>.
//
// The TRUE (unshifted) transform of a standardized value h, with a = |h|,
// L = log1p(a), s = sign(h) (sign(0) = +1), eta = lambda (h >= 0) or 2 - lambda
// (h < 0), t = eta L:
//   y = s f(eta, L),   f(eta, L) = expm1(eta L) / eta = L g(t),  g(t) = expm1(t) / t.
// Its lambda-derivatives: d eta / d lambda = s, so psi_n = d^n y / d lambda^n
// = s^(n+1) d^n f / d eta^n: odd orders carry no sign, even orders carry s:
//   psi = f_eta,  psi2 = s f_etaeta,  psi3 = f_etaetaeta,  d^n f / d eta^n = L^(n+1) g^(n)(t).
// Its h-derivative: psi_h = dy/dh = (1 + a)^(eta - 1) = exp(t) / (1 + a).
//
// g^(n)(t) = sum_{j>=0} t^j / (j! (j + n + 1)). The closed forms
//   g   = (E - 1) / t,                    g'   = (E (t - 1) + 1) / t^2,
//   g'' = (E (t^2 - 2t + 2) - 2) / t^3,   g''' = (E (t^3 - 3t^2 + 6t - 6) + 6) / t^4
// (E = exp(t)) cancel for small |t|: their numerators are t^(n+1) / (n+1) + ...
// There the series is summed instead: |t| < 0.5 with 16 terms in double
// (truncation < 1e-17 relative), |t| < 1 with 12 terms in float (< 1e-8).
// Worst remaining cancellation (g''' at the switch, t = -0.5) costs ~1e-13
// relative in double. Because f = L g(t), eta = 0 needs no special case.

// Opened before the includes: when this header is the first to include xsimd,
// xsimd's own (out-of-line) kernels then sit inside the GCC 105593 silencing too.
#include "normnorm/detail/begin_simd_code.hpp"

#include <cmath>

#include "normnorm/math/lanes.hpp"
#include "normnorm/detail/target_namespace.hpp"


namespace normnorm::math {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace profile_detail {

template <class T> struct SeriesParams;
template <> struct SeriesParams<double> { static constexpr int terms = 16; static constexpr double bound = 0.5; };
template <> struct SeriesParams<float> { static constexpr int terms = 12; static constexpr double bound = 1.0; };

// Coefficient j of g^(n): 1 / (j! (j + n + 1)), computed in double.
constexpr double series_coefficient(int n, int j) {
  double factorial = 1.0;
  for (int i = 2; i <= j; ++i) factorial *= i;
  return 1.0 / (factorial * (j + n + 1));
}

template <int N, int J>
struct SeriesTable {
  double c[J];
  constexpr SeriesTable() : c() { for (int j = 0; j < J; ++j) c[j] = series_coefficient(N, j); }
};

// g^(n)(t) by Horner's rule over the first SeriesParams<T>::terms terms.
template <int N, class V>
inline V g_series(const V& t) {
  using T = typename lane_traits<V>::scalar;
  constexpr int J = SeriesParams<T>::terms;
  static constexpr SeriesTable<N, J> table{};
  V acc = V(T(table.c[J - 1]));
  for (int j = J - 2; j >= 0; --j) acc = acc * t + V(T(table.c[j]));
  return acc;
}

}  // namespace profile_detail

// y and its lambda-derivatives up to Order (1, 2 or 3), plus psi_h = dy/dh.
template <class V>
struct EtaDerivatives {
  V y;       // s f
  V psi;     // dy/dlambda     = f_eta
  V psi2;    // d2y/dlambda2   = s f_etaeta     (Order >= 2)
  V psi3;    // d3y/dlambda3   = f_etaetaeta    (Order == 3)
  V psi_h;   // dy/dh          = exp(t) / (1 + a)
};

// One exp per element (E = exp(t); E - 1 is used only where |t| >= the series
// bound, so it does not cancel). `nonneg` = (h >= 0), a = |h|, L = log1p(a),
// lambda is per lane; eta = lambda or 2 - lambda by side.
template <int Order, class V, class Mask>
inline EtaDerivatives<V> eta_derivatives(const Mask& nonneg, const V& a, const V& L, const V& lambda) {
  using T = typename lane_traits<V>::scalar;
  static_assert(Order >= 1 && Order <= 3, "Order is 1, 2 or 3");
  const V eta = math::where(nonneg, lambda, V(T(2)) - lambda);
  const V t = eta * L;
  const V E = math::exp(t);
  const auto small = math::abs(t) < V(T(profile_detail::SeriesParams<T>::bound));
  // Closed forms; t is replaced by 1 in small lanes so nothing divides by 0.
  const V ts = math::where(small, V(T(1)), t);
  const V inv_t = V(T(1)) / ts;
  EtaDerivatives<V> r;
  const V g0 = math::where(small, profile_detail::g_series<0>(t), (E - V(T(1))) * inv_t);
  const V g1 = math::where(small, profile_detail::g_series<1>(t),
                           (E * (ts - V(T(1))) + V(T(1))) * inv_t * inv_t);
  const V L2 = L * L;
  r.y = math::where(nonneg, L * g0, -(L * g0));
  r.psi = L2 * g1;
  r.psi_h = E / (V(T(1)) + a);
  if constexpr (Order >= 2) {
    const V poly = (ts - V(T(2))) * ts + V(T(2));
    const V g2 = math::where(small, profile_detail::g_series<2>(t),
                             (E * poly - V(T(2))) * inv_t * inv_t * inv_t);
    const V m2 = L2 * L * g2;
    r.psi2 = math::where(nonneg, m2, -m2);
  } else {
    r.psi2 = V(T(0));
  }
  if constexpr (Order >= 3) {
    const V poly = ((ts - V(T(3))) * ts + V(T(6))) * ts - V(T(6));
    const V inv_t2 = inv_t * inv_t;
    const V g3 = math::where(small, profile_detail::g_series<3>(t), (E * poly + V(T(6))) * inv_t2 * inv_t2);
    r.psi3 = L2 * L2 * g3;
  } else {
    r.psi3 = V(T(0));
  }
  return r;
}

template <int Order, class V>
inline EtaDerivatives<V> eta_derivatives(const V& h, const V& lambda) {
  using T = typename lane_traits<V>::scalar;
  const V a = math::abs(h);
  return eta_derivatives<Order>(h >= V(T(0)), a, math::log1p(a), lambda);
}

// Group quantities at one lambda, from the per-group sums of a pass (all double):
//   sigma2 = mean((y - ybar)^2),  N = sum((y - ybar) psi),
//   N1 = dN/dlambda = sum((psi - psibar)^2) + sum((y - ybar) psi2),
//   N2 = dN1/dlambda = 3 sum((psi - psibar) psi2) + sum((y - ybar) psi3),
//   l1 = N / sigma2 - S,  l2 = N1 / sigma2 - 2 N^2 / (M sigma2^2),
//   l3 = N2 / sigma2 - 6 N N1 / (M sigma2^2) + 8 N^3 / (M^2 sigma2^3),
// the first three derivatives of l(lambda) = (M/2) log sigma2 - (lambda - 1) S, S = sum(s L).
struct ProfileDerivatives {
  double M = 0, S = 0;
  double sum_yy_shifted = 0;  // sum (y - shift_y)^2, the scale of syy's rounding error
  bool needs_recentring = false;  // the shifts were far from the means: the centred sums cancelled
  double ybar = 0, psibar = 0, psi2bar = 0;
  double sigma2 = 0, N = 0, N1 = 0, N2 = 0;
  double l1 = 0, l2 = 0, l3 = 0;
};

// The sums a pass accumulates, with y and psi shifted by per-group constants
// (Y = y - shift_y, P = psi - shift_psi) so the centred sums do not cancel.
enum ProfileSum : int {
  kSumSL = 0, kSumY, kSumP, kSumYY, kSumYP, kSumPP, kSumQ, kSumYQ,  // through l''
  kSumPQ, kSumR, kSumYR,                                            // l''' (newton)
  kProfileSums
};

inline ProfileDerivatives profile_from_sums(const double* sum, double M, double shift_y, double shift_psi,
                                            bool third) {
  ProfileDerivatives p;
  p.M = M;
  p.S = sum[kSumSL];
  const double my = sum[kSumY] / M, mp = sum[kSumP] / M;
  p.ybar = shift_y + my;
  p.psibar = shift_psi + mp;
  p.psi2bar = sum[kSumQ] / M;
  const double syy = sum[kSumYY] - M * my * my;          // sum (y - ybar)^2
  const double syp = sum[kSumYP] - M * my * mp;          // sum (y - ybar)(psi - psibar)
  const double spp = sum[kSumPP] - M * mp * mp;          // sum (psi - psibar)^2
  const double syq = sum[kSumYQ] - my * sum[kSumQ];      // sum (y - ybar) psi2
  p.sigma2 = syy / M;
  p.N = syp;
  p.N1 = spp + syq;
  p.sum_yy_shifted = sum[kSumYY];
  // More than 4 bits lost to cancellation in sum (y - ybar)^2 or sum (psi - psibar)^2.
  p.needs_recentring = std::isfinite(syy) && std::isfinite(spp) &&
                       (sum[kSumYY] > 16.0 * syy || sum[kSumPP] > 16.0 * spp);
  const double s2 = p.sigma2;
  p.l1 = p.N / s2 - p.S;
  p.l2 = p.N1 / s2 - 2.0 * p.N * p.N / (M * s2 * s2);
  if (third) {
    const double spq = sum[kSumPQ] - mp * sum[kSumQ];    // sum (psi - psibar) psi2
    const double syr = sum[kSumYR] - my * sum[kSumR];    // sum (y - ybar) psi3
    p.N2 = 3.0 * spq + syr;
    p.l3 = p.N2 / s2 - 6.0 * p.N * p.N1 / (M * s2 * s2) + 8.0 * p.N * p.N * p.N / (M * M * s2 * s2 * s2);
  }
  return p;
}

// d lambda / d h_j of one iterate is A dl'/dh_j + B dl''/dh_j (exact: A = -1/l'', B = 0;
// newton: A = -w/l'', B = w l'/l''^2, w the product of the later steps' dF/dlambda).
// With Y = y - ybar, P = psi - psibar, Q = psi2 - psi2bar, sL = s L, and
// d y/dh = psi_h, d psi/dh = sL psi_h, d psi2/dh = L^2 psi_h, d(sL)/dh = 1/(1 + a):
//   dl'/dh  = psi_h (P + sL Y) / s2 - 2 N psi_h Y / (M s2^2) - 1 / (1 + a)
//   dl''/dh = psi_h (Q + 2 sL P + L^2 Y) / s2 - 2 N1 psi_h Y / (M s2^2)
//             - 4 N psi_h (P + sL Y) / (M s2^2) + 8 N^2 psi_h Y / (M^2 s2^3)
// Writes c = {c_n, c_y, c_q, c_1} with A dl'/dh + B dl''/dh = psi_h (c_n (P + sL Y) + c_y Y
//   + c_q (Q + 2 sL P + L^2 Y)) + c_1 / (1 + a).
inline void gradient_coefficients(const ProfileDerivatives& p, double A, double B, double* c) {
  const double M = p.M, s2 = p.sigma2, s4 = s2 * s2;
  c[0] = A / s2 - 4.0 * B * p.N / (M * s4);
  c[1] = -2.0 * A * p.N / (M * s4) - 2.0 * B * p.N1 / (M * s4) + 8.0 * B * p.N * p.N / (M * M * s4 * s2);
  c[2] = B / s2;
  c[3] = -A;
}

// One pass over a run of W groups (lanes; value j of lane w at h[j * stride + w])
// accumulating the sums above at each lane's own lambda and shifts. Partial sums
// in T per lane, folded into acc (double) every reduction_block values: a
// lane's sums depend only on its own values, in row order.
template <class V, int Order>
inline void profile_pass(const typename lane_traits<V>::scalar* h, index_t size, index_t stride,
                         const V& lam, const V& shift_y, const V& shift_psi,
                         double (*acc)[lane_traits<V>::width]) {
  using T = typename lane_traits<V>::scalar;
  constexpr int W = static_cast<int>(lane_traits<V>::width);
  constexpr int K = Order == 3 ? kProfileSums : kSumPQ;
  V part[K];
  for (int k = 0; k < K; ++k) part[k] = V(T(0));
  for (int k = 0; k < kProfileSums; ++k) for (int w = 0; w < W; ++w) acc[k][w] = 0.0;
  for (index_t j = 0; j < size; ++j) {
    const V hv = math::load<V>(h + j * stride);
    const auto nonneg = hv >= V(T(0));
    const V a = math::abs(hv);
    const V L = math::log1p(a);
    const EtaDerivatives<V> d = eta_derivatives<Order>(nonneg, a, L, lam);
    const V Y = d.y - shift_y, P = d.psi - shift_psi;
    part[kSumSL] += math::where(nonneg, L, -L);
    part[kSumY] += Y;
    part[kSumP] += P;
    part[kSumYY] += Y * Y;
    part[kSumYP] += Y * P;
    part[kSumPP] += P * P;
    part[kSumQ] += d.psi2;
    part[kSumYQ] += Y * d.psi2;
    if constexpr (Order == 3) {
      part[kSumPQ] += P * d.psi2;
      part[kSumR] += d.psi3;
      part[kSumYR] += Y * d.psi3;
    }
    if ((j + 1) % reduction_block == 0 || j + 1 == size) {  // fold the block into double
      for (int k = 0; k < K; ++k) {
        T tmp[W];
        math::store(tmp, part[k]);
        for (int w = 0; w < W; ++w) acc[k][w] += double(tmp[w]);
        part[k] = V(T(0));
      }
    }
  }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
