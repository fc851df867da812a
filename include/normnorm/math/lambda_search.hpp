#pragma once
// Better lambda estimates (issue 7; docs/lambda-search.md): newton(k), k Newton
// steps on the Yeo-Johnson profile negative log-likelihood
//   l(lambda) = (M/2) log sigma2(lambda) - (lambda - 1) sum(s L)
// of the TRUE (unshifted) transform, started at lambda = 1; or exact, its
// minimiser by a safeguarded Newton/bisection search (scipy's
// yeojohnson_normmax). Vectorised across groups: lanes = groups, input
// group-interleaved (value j of group g at h[j * groups + g]). Each search
// iteration is one pass over the group's values (sums in double, fixed order),
// plus a re-centring pass when an iterate's means moved so far from the last
// one's that the shifted one-pass sums cancelled. A LambdaTrace per group holds
// lambda and what lambda_gradient needs for d lambda / d h_j.
//
// No scratch and no heap: a SIMD batch of groups is searched to the end before
// the next, with its per-lane state on the stack (and its data in cache).

// Opened before the includes: when this header is the first to include xsimd,
// xsimd's own (out-of-line) kernels then sit inside the GCC 105593 silencing too.
#include "normnorm/detail/begin_simd_code.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "normnorm/math/lanes.hpp"
#include "normnorm/math/lambda_search_settings.hpp"
#include "normnorm/math/profile_likelihood.hpp"
#include "normnorm/status.hpp"
#include "normnorm/detail/target_namespace.hpp"


namespace normnorm::math {

// One evaluated iterate: the group constants there and the coefficients of its
// term in d lambda / d h (see lambda_gradient).
template <class T>
struct LambdaStep {
  T lambda = T(1), ybar = T(0), psibar = T(0), psi2bar = T(0);
  T c_n = T(0), c_y = T(0), c_q = T(0);
};

template <class T>
struct LambdaTrace {
  double lambda = 1.0;             // the estimate
  double l1 = 0.0, l2 = 0.0;       // l', l'' at the last evaluated iterate
  int iterations = 0;              // evaluations of l', l'' (exact) or Newton steps attempted (newton)
  int passes = 0;                  // passes over the data: iterations plus re-centring passes
  int steps = 0;                   // used entries of step[] (0: d lambda / d h = 0)
  LambdaSearchKind kind = LambdaSearchKind::exact;
  LambdaStatus status = LambdaStatus::ok;
  T c_1 = T(0);                    // coefficient of 1 / (1 + a), summed over steps
  LambdaStep<T> step[kMaxNewtonSteps];
};
static_assert(std::is_trivially_copyable_v<LambdaTrace<double>>);

// Above: types the saved context holds (one type in the whole program). Below:
// code, compiled per instruction set (detail/target_namespace.hpp).
NORMNORM_TARGET_NAMESPACE_BEGIN

template <class T> constexpr double default_lambda_tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

inline void validate(const LambdaSearchSettings& s) {
  if (!(s.lambda_min < s.lambda_max) || !(s.lambda_min <= 1.0) || !(s.lambda_max >= 1.0) ||
      !std::isfinite(s.lambda_min) || !std::isfinite(s.lambda_max))
    detail::raise(Status::invalid_argument("normnorm: lambda search: need finite lambda_min <= 1 <= lambda_max, lambda_min < lambda_max"));
  if (s.kind == LambdaSearchKind::newton && (s.newton_steps < 0 || s.newton_steps > kMaxNewtonSteps))
    detail::raise(Status::invalid_argument("normnorm: lambda search: newton_steps must be in [0, kMaxNewtonSteps]"));
  if (s.kind == LambdaSearchKind::exact && s.max_iterations < 1)
    detail::raise(Status::invalid_argument("normnorm: lambda search: max_iterations must be >= 1"));
}

namespace search_detail {

// Per-lane state of one group's search (scalar, double).
template <class T>
struct Lane {
  double lam = 1.0, lo = 0, hi = 0, shift_y = 0, shift_psi = 0;
  bool lo_eval = false, hi_eval = false, done = false;
  int recentres = 0;                // re-centring passes at the current lambda
  ProfileDerivatives best;          // exact: last finite evaluation
  double best_lam = 1.0;
  double coef[kMaxNewtonSteps][4];  // newton: unweighted c_n, c_y, c_q, c_1 of each step
  double dF[kMaxNewtonSteps];       // newton: d lambda_{i+1} / d lambda_i
};

template <class T>
inline void set_group_constants(LambdaStep<T>& st, double lam, const ProfileDerivatives& p) {
  st.lambda = T(lam);
  st.ybar = T(p.ybar);
  st.psibar = T(p.psibar);
  st.psi2bar = T(p.psi2bar);
}

// The first pass (lambda = 1): degenerate or non-finite groups end here.
template <class T>
inline bool first_pass_fails(Lane<T>& s, LambdaTrace<T>& tr, const ProfileDerivatives& p) {
  const bool finite = std::isfinite(p.sigma2) && std::isfinite(p.N) && std::isfinite(p.S) && std::isfinite(p.N1);
  if (p.M < 1) {
    tr.status = LambdaStatus::degenerate;
    tr.lambda = 1.0;
  } else if (!finite) {
    tr.status = LambdaStatus::non_finite;
    tr.lambda = std::numeric_limits<double>::quiet_NaN();
  } else if (!(p.sigma2 * p.M > 8.0 * std::numeric_limits<T>::epsilon() * p.sum_yy_shifted) ||
             !(p.sigma2 >= std::numeric_limits<double>::min())) {
    tr.status = LambdaStatus::degenerate;
    tr.lambda = 1.0;
  } else {
    return false;
  }
  s.done = true;
  return true;
}

inline bool usable(const ProfileDerivatives& p, bool third) {
  return std::isfinite(p.l1) && std::isfinite(p.l2) && (!third || std::isfinite(p.l3)) &&
         std::isfinite(p.sigma2) && p.sigma2 >= std::numeric_limits<double>::min();
}

// exact: one evaluation's update of the bracket and the next trial point.
template <class T>
inline void exact_update(Lane<T>& s, LambdaTrace<T>& tr, const ProfileDerivatives& p,
                         const LambdaSearchSettings& set, double tol) {
  const int it = ++tr.iterations;
  const double lmin = double(T(set.lambda_min)), lmax = double(T(set.lambda_max));
  if (it == 1) {
    s.lo = lmin;
    s.hi = lmax;
    if (first_pass_fails(s, tr, p)) return;
  }
  double lam_star = 0;
  bool finish = false;
  if (!usable(p, false)) {
    // Overflow at a far trial point: the optimum lies between it and the last good point.
    if (s.lam > s.best_lam) { s.hi = s.lam; s.hi_eval = true; } else { s.lo = s.lam; s.lo_eval = true; }
  } else {
    s.best = p;
    s.best_lam = s.lam;
    s.shift_y = p.ybar;
    s.shift_psi = p.psibar;
    if (p.l1 > 0) { s.hi = s.lam; s.hi_eval = true; } else { s.lo = s.lam; s.lo_eval = true; }
    if (s.lam >= lmax && p.l1 < 0) {
      tr.status = LambdaStatus::clamped_high; lam_star = lmax; finish = true;
    } else if (s.lam <= lmin && p.l1 > 0) {
      tr.status = LambdaStatus::clamped_low; lam_star = lmin; finish = true;
    } else if (p.l1 == 0 || (p.l2 > 0 && std::abs(p.l1 / p.l2) <= tol)) {
      lam_star = p.l1 == 0 ? s.lam : std::min(std::max(s.lam - p.l1 / p.l2, s.lo), s.hi);
      finish = true;
    }
  }
  if (!finish) {
    double next = 0.5 * (s.lo + s.hi);
    if (usable(p, false) && p.l2 > 0) {
      const double cand = s.lam - p.l1 / p.l2;
      if (cand > s.lo && cand < s.hi) next = cand;
      else if (cand >= s.hi && !s.hi_eval) next = s.hi;   // try the bracket's limit itself
      else if (cand <= s.lo && !s.lo_eval) next = s.lo;
    }
    if (s.hi - s.lo <= tol) { lam_star = s.best_lam; finish = true; }
    else if (it >= set.max_iterations) { tr.status = LambdaStatus::max_iterations; lam_star = s.best_lam; finish = true; }
    else s.lam = double(T(next));
  }
  if (!finish) return;
  s.done = true;
  tr.lambda = lam_star;
  tr.l1 = s.best.l1;
  tr.l2 = s.best.l2;
  const bool interior = tr.status == LambdaStatus::ok || tr.status == LambdaStatus::max_iterations;
  if (interior && s.best.l2 > 0) {  // implicit function theorem: d lambda/dh = -(d l'/dh) / l''
    double c[4];
    gradient_coefficients(s.best, -1.0 / s.best.l2, 0.0, c);
    tr.steps = 1;
    set_group_constants(tr.step[0], s.best_lam, s.best);
    tr.step[0].c_n = T(c[0]);
    tr.step[0].c_y = T(c[1]);
    tr.c_1 = T(c[3]);
  }
}

// newton(k): one step lambda_{i+1} = lambda_i - l'/l'', clamped into the bracket.
template <class T>
inline void newton_update(Lane<T>& s, LambdaTrace<T>& tr, const ProfileDerivatives& p,
                          const LambdaSearchSettings& set) {
  const int i = tr.iterations++;
  if (i == 0 && first_pass_fails(s, tr, p)) return;
  tr.l1 = p.l1;
  tr.l2 = p.l2;
  if (!usable(p, true) || !(p.l2 > 0)) {
    tr.status = LambdaStatus::stalled;
    s.done = true;
  } else {
    set_group_constants(tr.step[i], s.lam, p);
    gradient_coefficients(p, -1.0 / p.l2, p.l1 / (p.l2 * p.l2), s.coef[i]);
    s.dF[i] = p.l1 * p.l3 / (p.l2 * p.l2);
    tr.status = LambdaStatus::ok;
    double next = s.lam - p.l1 / p.l2;
    if (!(next <= set.lambda_max)) { next = set.lambda_max; tr.status = LambdaStatus::clamped_high; }
    if (!(next >= set.lambda_min)) { next = set.lambda_min; tr.status = LambdaStatus::clamped_low; }
    if (tr.status != LambdaStatus::ok) {  // a clamped step is constant: no gradient through it
      for (double& c : s.coef[i]) c = 0.0;
      s.dF[i] = 0.0;
    }
    s.shift_y = p.ybar;
    s.shift_psi = p.psibar;
    s.lam = double(T(next));
    tr.steps = i + 1;
    if (tr.steps == set.newton_steps) s.done = true;
  }
  tr.lambda = s.lam;
  if (!s.done) return;
  // Reverse sweep: weight of step i = prod_{m > i} dF/dlambda(lambda_m).
  double w = 1.0, c1 = 0.0;
  for (int m = tr.steps - 1; m >= 0; --m) {
    tr.step[m].c_n = T(w * s.coef[m][0]);
    tr.step[m].c_y = T(w * s.coef[m][1]);
    tr.step[m].c_q = T(w * s.coef[m][2]);
    c1 += w * s.coef[m][3];
    w *= s.dF[m];
  }
  tr.c_1 = T(c1);
}

template <class V>
inline void search_batch(const typename lane_traits<V>::scalar* h, index_t size, index_t groups,
                         const LambdaSearchSettings& set, LambdaTrace<typename lane_traits<V>::scalar>* out) {
  using T = typename lane_traits<V>::scalar;
  constexpr int W = static_cast<int>(lane_traits<V>::width);
  const bool newton = set.kind == LambdaSearchKind::newton;
  const double tol = set.tolerance > 0 ? set.tolerance : default_lambda_tolerance<T>();
  const int cap = newton ? set.newton_steps : set.max_iterations;
  constexpr int kMaxRecentres = 2;  // per evaluation point
  Lane<T> lane[W];
  for (int w = 0; w < W; ++w) { out[w] = LambdaTrace<T>{}; out[w].kind = set.kind; lane[w].done = cap == 0; }
  double acc[kProfileSums][W];
  for (int pass = 0; pass < (kMaxRecentres + 1) * cap; ++pass) {
    bool all_done = true;
    T lam[W], sy[W], sp[W];
    for (int w = 0; w < W; ++w) {
      all_done = all_done && lane[w].done;
      lam[w] = T(lane[w].lam); sy[w] = T(lane[w].shift_y); sp[w] = T(lane[w].shift_psi);
    }
    if (all_done) break;
    const V vl = math::load<V>(lam), vy = math::load<V>(sy), vp = math::load<V>(sp);
    if (newton) profile_pass<V, 3>(h, size, groups, vl, vy, vp, acc);
    else profile_pass<V, 2>(h, size, groups, vl, vy, vp, acc);
    for (int w = 0; w < W; ++w) {
      if (lane[w].done) continue;
      double sums[kProfileSums];
      for (int k = 0; k < kProfileSums; ++k) sums[k] = acc[k][w];
      const ProfileDerivatives p = profile_from_sums(sums, double(size), double(sy[w]), double(sp[w]), newton);
      ++out[w].passes;
      // The shifts (the previous iterate's means) were far from this iterate's:
      // the centred sums cancelled. Evaluate again at the same lambda, shifted by its means.
      if (p.needs_recentring && lane[w].recentres < kMaxRecentres) {
        ++lane[w].recentres;
        lane[w].shift_y = p.ybar;
        lane[w].shift_psi = p.psibar;
        continue;
      }
      lane[w].recentres = 0;
      if (newton) newton_update(lane[w], out[w], p, set);
      else exact_update(lane[w], out[w], p, set, tol);
    }
  }
}

}  // namespace search_detail

// Searches lambda for every group of the group-interleaved array h (value j of
// group g at h[j * groups + g], j < size): SIMD batches of groups first, the
// remaining groups one at a time on the scalar path (Arch = scalar_arch: all scalar).
// Writes traces[0 .. groups). Throws std::invalid_argument for bad settings;
// search_lambda_unchecked skips that check, for callers whose settings come from
// validated options (the engine: its kernels build no error text).
template <class T, class Arch>
inline void search_lambda_unchecked(const T* h, index_t size, index_t groups, const LambdaSearchSettings& settings,
                                    LambdaTrace<T>* traces) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  index_t g = 0;
  if constexpr (is_simd<Arch>) {
    using B = xsimd::batch<T, Arch>;
    constexpr index_t width = static_cast<index_t>(B::size);
    for (; g + width <= groups; g += width) search_detail::search_batch<B>(h + g, size, groups, settings, traces + g);
  }
  for (; g < groups; ++g) search_detail::search_batch<T>(h + g, size, groups, settings, traces + g);
}

template <class T, class Arch>
inline void search_lambda(const T* h, index_t size, index_t groups, const LambdaSearchSettings& settings,
                          LambdaTrace<T>* traces) {
  validate(settings);
  if (size < 0 || groups < 0) detail::raise(Status::invalid_argument("normnorm: lambda search: negative size or group count"));
  search_lambda_unchecked<T, Arch>(h, size, groups, settings, traces);
}

// d lambda / d h_j for element(s) h of the group `trace` describes (NOT scaled
// by M, unlike lambda_sensitivity): per step i, with y, psi, psi2, psi_h at
// lambda_i, Y = y - ybar_i, P = psi - psibar_i, Q = psi2 - psi2bar_i, sL = s L:
//   psi_h (c_n (P + sL Y) + c_y Y + c_q (Q + 2 sL P + L^2 Y))  summed, plus c_1 / (1 + a).
// Cost: one log1p, then one exp per step (exact: one step).
template <class V, class T>
inline V lambda_gradient(const V& h, const LambdaTrace<T>& trace) {
  const auto nonneg = h >= V(T(0));
  const V a = math::abs(h);
  const V L = math::log1p(a);
  const V sL = math::where(nonneg, L, -L);
  V grad = V(trace.c_1) / (V(T(1)) + a);
  for (int i = 0; i < trace.steps; ++i) {
    const LambdaStep<T>& st = trace.step[i];
    const V lam = V(st.lambda);
    if (trace.kind == LambdaSearchKind::newton) {
      const EtaDerivatives<V> d = eta_derivatives<2>(nonneg, a, L, lam);
      const V Y = d.y - V(st.ybar), P = d.psi - V(st.psibar), Q = d.psi2 - V(st.psi2bar);
      grad += d.psi_h * (V(st.c_n) * (P + sL * Y) + V(st.c_y) * Y + V(st.c_q) * (Q + V(T(2)) * sL * P + L * L * Y));
    } else {
      const EtaDerivatives<V> d = eta_derivatives<1>(nonneg, a, L, lam);
      const V Y = d.y - V(st.ybar), P = d.psi - V(st.psibar);
      grad += d.psi_h * (V(st.c_n) * (P + sL * Y) + V(st.c_y) * Y);
    }
  }
  return grad;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
