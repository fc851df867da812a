// Tests for include/normnorm/math/lambda_search.hpp (issue 7): the exact
// (maximum-likelihood) lambda against scipy.stats.yeojohnson_normmax on the
// reference samples of tests/lambda_reference/make_reference.py; newton(k)
// against a hand-written long-double Newton step and against exact; the SIMD
// path against the scalar one; lambda_gradient against finite differences; and
// the documented edge behaviour (clamping, degenerate and non-finite groups).
// The hidden case "[lambda_table]" prints the table of docs/lambda-search.md:
//   build/tests/normnorm_tests "[lambda_table]"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "normnorm/math/lambda_search.hpp"

#include "lambda_reference.hpp"

namespace {

namespace nm = normnorm::math;
using normnorm::index_t;
using nm::LambdaSearchKind;
using nm::LambdaSearchSettings;
using nm::LambdaStatus;
using nm::LambdaTrace;

using normnorm::test::RefSample;
using normnorm::test::reference_samples;

// The random samples; the two edge samples have scipy's optimum outside the
// default bracket [-8, 10].
bool interior(const RefSample& s) {
  const LambdaSearchSettings def;
  return s.scipy > def.lambda_min && s.scipy < def.lambda_max;
}

// ---- long-double references, independent of the library's formulas ----------
long double yj(long double h, long double lam) {  // true Yeo-Johnson
  const long double a = std::fabs(h), L = std::log1p(a), eta = h >= 0 ? lam : 2 - lam;
  const long double f = eta == 0 ? L : std::expm1(eta * L) / eta;
  return h >= 0 ? f : -f;
}
template <class T>
long double nll(const std::vector<T>& h, long double lam) {  // -yeojohnson_llf
  const long double M = static_cast<long double>(h.size());
  long double mean = 0, var = 0, S = 0;
  for (T v : h) mean += yj(v, lam);
  mean /= M;
  for (T v : h) {
    const long double d = yj(v, lam) - mean, L = std::log1p(std::fabs(static_cast<long double>(v)));
    var += d * d;
    S += v >= 0 ? L : -L;
  }
  return M / 2 * std::log(var / M) - (lam - 1) * S;
}

// One Newton step on the NLL from lambda = 1, written out at lambda = 1 where
// y = h, dy/dlambda = (1 + a) L - a and d2y/dlambda2 = s ((1 + a)(L^2 - 2L + 2) - 2).
template <class T>
long double newton_one_reference(const std::vector<T>& hv) {
  const long double M = static_cast<long double>(hv.size());
  long double hbar = 0, pbar = 0, S = 0;
  for (T v : hv) {
    const long double h = v, a = std::fabs(h), L = std::log1p(a);
    hbar += h;
    pbar += (1 + a) * L - a;
    S += h >= 0 ? L : -L;
  }
  hbar /= M;
  pbar /= M;
  long double var = 0, N = 0, N1 = 0;
  for (T v : hv) {
    const long double h = v, a = std::fabs(h), L = std::log1p(a), s = h >= 0 ? 1 : -1;
    const long double psi = (1 + a) * L - a, psi2 = s * ((1 + a) * (L * L - 2 * L + 2) - 2);
    var += (h - hbar) * (h - hbar);
    N += (h - hbar) * psi;
    N1 += (psi - pbar) * (psi - pbar) + (h - hbar) * psi2;
  }
  var /= M;
  const long double l1 = N / var - S, l2 = N1 / var - 2 * N * N / (M * var * var);
  return 1 - l1 / l2;
}

// ---- helpers ---------------------------------------------------------------
template <class T, class Arch = nm::scalar_arch>
LambdaTrace<T> search_one(const std::vector<T>& h, const LambdaSearchSettings& set) {
  LambdaTrace<T> tr;
  nm::search_lambda<T, Arch>(h.data(), static_cast<index_t>(h.size()), 1, set, &tr);
  return tr;
}
LambdaSearchSettings exact_settings() { return LambdaSearchSettings{}; }
LambdaSearchSettings newton_settings(int k) {
  LambdaSearchSettings s;
  s.kind = LambdaSearchKind::newton;
  s.newton_steps = k;
  return s;
}
template <class T>
std::vector<T> as(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }

// Standardized (biased variance, eps = 1e-5, as the layer) random group.
std::vector<double> random_group(std::mt19937_64& rng, index_t M, int kind) {
  std::normal_distribution<double> normal;
  std::exponential_distribution<double> expo;
  std::vector<double> x(static_cast<std::size_t>(M));
  for (double& v : x) {
    switch (kind % 5) {
      case 0: v = normal(rng); break;
      case 1: v = std::exp(normal(rng)); break;
      case 2: v = expo(rng); break;
      case 3: v = -std::exp(0.6 * normal(rng)); break;
      default: v = normal(rng) / std::sqrt(0.5 * (expo(rng) + expo(rng)) + 0.05); break;
    }
  }
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(M);
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(M);
  for (double& v : x) v = (v - mean) / std::sqrt(var + 1e-5);
  return x;
}

const char* status_name(LambdaStatus s) {
  switch (s) {
    case LambdaStatus::ok: return "ok";
    case LambdaStatus::clamped_low: return "clamped_low";
    case LambdaStatus::clamped_high: return "clamped_high";
    case LambdaStatus::max_iterations: return "max_iterations";
    case LambdaStatus::stalled: return "stalled";
    case LambdaStatus::degenerate: return "degenerate";
    case LambdaStatus::non_finite: return "non_finite";
  }
  return "?";
}

// Central-difference check of lambda_gradient for the group h (elements `js`).
// Returns max |fd - analytic| / max_j |analytic| (over all elements).
template <class T>
double gradient_fd_error(const std::vector<T>& h, const LambdaSearchSettings& set, T step) {
  const LambdaTrace<T> tr = search_one(h, set);
  double scale = 0;
  std::vector<double> an(h.size());
  for (std::size_t j = 0; j < h.size(); ++j) {
    an[j] = static_cast<double>(nm::lambda_gradient(h[j], tr));
    scale = std::max(scale, std::abs(an[j]));
  }
  REQUIRE(scale > 0);
  double worst = 0;
  const std::size_t stride = std::max<std::size_t>(1, h.size() / 24);  // about 24 elements per group
  for (std::size_t j = 0; j < h.size(); j += stride) {
    std::vector<T> hp = h, hm = h;
    hp[j] += step;
    hm[j] -= step;
    const double dp = static_cast<double>(hp[j]) - static_cast<double>(h[j]);
    const double dm = static_cast<double>(h[j]) - static_cast<double>(hm[j]);
    const double fd = (search_one(hp, set).lambda - search_one(hm, set).lambda) / (dp + dm);
    worst = std::max(worst, std::abs(fd - an[j]) / scale);
  }
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("eta_derivatives: y and its lambda-derivatives against long double", "[lambda_search]", double, float) {
  using T = TestType;
  using B = xsimd::batch<T>;
  // g^(n)(t) = sum_j t^j / (j! (j + n + 1)) summed far in long double for |t| <= 2, closed forms beyond.
  auto g_ref = [](int n, long double t) {
    if (std::fabs(t) <= 2) {
      long double sum = 0, term = 1;  // term = t^j / j!
      for (int j = 0; j < 60; ++j) { sum += term / (j + n + 1); term *= t / (j + 1); }
      return sum;
    }
    const long double E = std::exp(t);
    switch (n) {
      case 0: return (E - 1) / t;
      case 1: return (E * (t - 1) + 1) / (t * t);
      case 2: return (E * (t * t - 2 * t + 2) - 2) / (t * t * t);
      default: return (E * (t * t * t - 3 * t * t + 6 * t - 6) + 6) / (t * t * t * t);
    }
  };
  const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-5;
  double worst = 0;
  std::vector<T> hs;
  for (double a : {1e-9, 1e-4, 0.01, 0.2, 0.7, 1.0, 1.6487, 3.0, 12.0, 150.0}) { hs.push_back(T(a)); hs.push_back(T(-a)); }
  hs.push_back(T(0));
  for (double lam : {-3.0, -1.0, -0.3, 0.0, 1e-7, 0.29, 0.3, 0.31, 1.0, 1.7, 2.0, 2.6, 4.0}) {
    for (T h : hs) {
      const long double a = std::fabs(static_cast<long double>(h)), L = std::log1p(a), s = h >= 0 ? 1 : -1;
      const long double eta = h >= 0 ? T(lam) : 2 - static_cast<long double>(T(lam)), t = eta * L;
      const long double ref[4] = {s * L * g_ref(0, t), L * L * g_ref(1, t), s * L * L * L * g_ref(2, t),
                                  L * L * L * L * g_ref(3, t)};
      const auto d = nm::eta_derivatives<3>(h, T(lam));
      const T got[4] = {d.y, d.psi, d.psi2, d.psi3};
      T lanes[4][B::size];
      const auto db = nm::eta_derivatives<3>(B(h), B(T(lam)));
      db.y.store_unaligned(lanes[0]); db.psi.store_unaligned(lanes[1]);
      db.psi2.store_unaligned(lanes[2]); db.psi3.store_unaligned(lanes[3]);
      for (int n = 0; n < 4; ++n) {
        INFO("lambda " << lam << " h " << double(h) << " derivative " << n);
        const long double err = std::fabs(got[n] - ref[n]) / (std::fabs(ref[n]) + std::numeric_limits<T>::min());
        CHECK(err <= tol);
        CHECK(std::fabs(lanes[n][0] - ref[n]) <= tol * std::fabs(ref[n]) + std::numeric_limits<T>::min());
        worst = std::max(worst, static_cast<double>(err));
      }
      CHECK(std::fabs(d.psi_h - std::exp(t) / (1 + a)) <= tol * std::exp(t) / (1 + a));
    }
  }
  std::printf("lambda_search: eta_derivatives<%s> max relative error %.1e\n", sizeof(T) == 8 ? "double" : "float", worst);
}

TEST_CASE("exact lambda matches scipy.stats.yeojohnson_normmax", "[lambda_search]") {
  const auto& samples = reference_samples();
  REQUIRE(samples.size() >= 29);
  double worst_double = 0, worst_float = 0;
  int clamped = 0, max_passes = 0;
  for (const RefSample& s : samples) {
    INFO(s.name);
    LambdaSearchSettings set = exact_settings();
    const bool inside = s.scipy > set.lambda_min && s.scipy < set.lambda_max;
    if (!inside) {
      // The edge samples: scipy's optimum is outside the default bracket, so the
      // default search clamps; a wide bracket must then find scipy's optimum.
      ++clamped;
      const LambdaTrace<double> def = search_one(s.h, set);
      CHECK(def.status == (s.scipy < set.lambda_min ? LambdaStatus::clamped_low : LambdaStatus::clamped_high));
      CHECK(def.lambda == (s.scipy < set.lambda_min ? set.lambda_min : set.lambda_max));
      CHECK(def.steps == 0);
      set.lambda_min = -40;
      set.lambda_max = 42;
    }
    // scipy's own stopping rule is relative (brent, tol 1.48e-8): compare relative beyond |lambda| = 1.
    const double tol = std::max(1.0, std::abs(s.scipy));
    const LambdaTrace<double> tr = search_one(s.h, set);
    CHECK(tr.status == LambdaStatus::ok);
    CHECK(std::abs(tr.lambda - s.scipy) < 1e-6 * tol);
    worst_double = std::max(worst_double, std::abs(tr.lambda - s.scipy) / tol);
    // A true minimum of the long-double NLL, independently of scipy.
    CHECK(nll(s.h, tr.lambda) <= nll(s.h, tr.lambda + 1e-4L));
    CHECK(nll(s.h, tr.lambda) <= nll(s.h, tr.lambda - 1e-4L));
    const LambdaTrace<float> trf = search_one(as<float>(s.h), set);
    CHECK(trf.status == LambdaStatus::ok);
    CHECK(std::abs(trf.lambda - s.scipy) < 1e-5 * tol);  // float: stated tolerance 1e-5 (relative beyond 1)
    worst_float = std::max(worst_float, std::abs(trf.lambda - s.scipy) / tol);
    CHECK(tr.iterations <= 12);
    CHECK(tr.passes <= tr.iterations + 2);
    max_passes = std::max(max_passes, tr.passes);
  }
  CHECK(clamped == 2);
  std::printf("lambda_search: max |exact - scipy| = %.2e (double), %.2e (float) (relative beyond |lambda| = 1); max passes %d\n",
              worst_double, worst_float, max_passes);
}

TEST_CASE("newton(1) equals a hand-written long-double Newton step", "[lambda_search]") {
  double worst = 0;
  for (const RefSample& s : reference_samples()) {
    INFO(s.name);
    const long double ref = newton_one_reference(s.h);
    const LambdaTrace<double> tr = search_one(s.h, newton_settings(1));
    REQUIRE(tr.status == LambdaStatus::ok);
    CHECK(std::abs(tr.lambda - static_cast<double>(ref)) <= 1e-12 * std::max(1.0, std::abs(tr.lambda)));
    worst = std::max(worst, std::abs(tr.lambda - static_cast<double>(ref)));
    const std::vector<float> hf = as<float>(s.h);
    const LambdaTrace<float> trf = search_one(hf, newton_settings(1));
    CHECK(std::abs(trf.lambda - static_cast<double>(newton_one_reference(hf))) <= 2e-5);
  }
  std::printf("lambda_search: max |newton(1) - long double step| = %.2e\n", worst);
}

TEST_CASE("newton(k) converges to exact as k grows", "[lambda_search]") {
  for (const RefSample& s : reference_samples()) {
    INFO(s.name);
    if (!interior(s)) {  // newton(k) runs into the bracket's limit on scipy's side and stays there
      const LambdaTrace<double> tr = search_one(s.h, newton_settings(16));
      CHECK(tr.status == (s.scipy < 0 ? LambdaStatus::clamped_low : LambdaStatus::clamped_high));
      CHECK(tr.lambda == (s.scipy < 0 ? -8.0 : 10.0));
      continue;
    }
    const double exact = search_one(s.h, exact_settings()).lambda;
    double previous = std::numeric_limits<double>::infinity();
    for (int k : {1, 2, 4, 8, 16}) {
      INFO("k = " << k);
      const LambdaTrace<double> tr = search_one(s.h, newton_settings(k));
      CHECK(tr.status == LambdaStatus::ok);
      CHECK(tr.steps == k);
      const double err = std::abs(tr.lambda - exact);
      if (k >= 2) CHECK(err <= previous + 1e-12);
      if (k >= 8) CHECK(err < 1e-9);
      previous = err;
    }
  }
}

TEMPLATE_TEST_CASE("SIMD and scalar searches agree, and results do not depend on position", "[lambda_search]", double, float) {
  using T = TestType;
  const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-5;
  std::mt19937_64 rng(7);
  for (index_t groups : {1, 7, 17, 64}) {
    for (index_t M : {3, 40, 600}) {
      std::vector<std::vector<double>> g(static_cast<std::size_t>(groups));
      for (index_t k = 0; k < groups; ++k) g[static_cast<std::size_t>(k)] = random_group(rng, M, static_cast<int>(k));
      std::vector<T> h(static_cast<std::size_t>(groups * M));
      for (index_t j = 0; j < M; ++j)
        for (index_t k = 0; k < groups; ++k) h[static_cast<std::size_t>(j * groups + k)] = T(g[static_cast<std::size_t>(k)][static_cast<std::size_t>(j)]);
      for (const LambdaSearchSettings& set : {exact_settings(), newton_settings(1), newton_settings(3)}) {
        std::vector<LambdaTrace<T>> simd(static_cast<std::size_t>(groups)), scalar(static_cast<std::size_t>(groups));
        nm::search_lambda<T, xsimd::default_arch>(h.data(), M, groups, set, simd.data());
        nm::search_lambda<T, nm::scalar_arch>(h.data(), M, groups, set, scalar.data());
        for (index_t k = 0; k < groups; ++k) {
          INFO("groups " << groups << " M " << M << " group " << k << " kind " << int(set.kind));
          const auto& a = simd[static_cast<std::size_t>(k)];
          const auto& b = scalar[static_cast<std::size_t>(k)];
          CHECK(a.status == b.status);
          CHECK(std::abs(a.lambda - b.lambda) <= tol * std::max(1.0, std::abs(b.lambda)));
          // The scalar path: the same group alone gives bit-identical results.
          std::vector<T> alone(static_cast<std::size_t>(M));
          for (index_t j = 0; j < M; ++j) alone[static_cast<std::size_t>(j)] = h[static_cast<std::size_t>(j * groups + k)];
          CHECK(search_one(alone, set).lambda == b.lambda);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("lambda_gradient: SIMD lanes agree with the scalar path", "[lambda_search]", double, float) {
  using T = TestType;
  using B = xsimd::batch<T>;
  constexpr index_t W = static_cast<index_t>(B::size);
  const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  std::mt19937_64 rng(11);
  for (const LambdaSearchSettings& set : {exact_settings(), newton_settings(2), newton_settings(4)}) {
    std::vector<T> h = as<T>(random_group(rng, 8 * W + 3, 1));
    h[3] = T(0);  // h = 0 exactly: both sides' formulas meet
    const LambdaTrace<T> tr = search_one(h, set);
    double scale = 0;
    for (T v : h) scale = std::max(scale, std::abs(double(nm::lambda_gradient(v, tr))));
    for (index_t i = 0; i + W <= static_cast<index_t>(h.size()); i += W) {
      T lanes[W];
      nm::lambda_gradient(B::load_unaligned(h.data() + i), tr).store_unaligned(lanes);
      for (index_t w = 0; w < W; ++w)
        CHECK(std::abs(double(lanes[w]) - double(nm::lambda_gradient(h[static_cast<std::size_t>(i + w)], tr))) <= tol * scale);
    }
  }
}

TEST_CASE("lambda_gradient matches finite differences (double)", "[lambda_search]") {
  double worst[4] = {0, 0, 0, 0};
  const int ks[4] = {0, 1, 2, 4};  // 0 = exact
  for (const RefSample& s : reference_samples()) {
    INFO(s.name);
    if (!interior(s)) {  // edge samples: the exact optimum (~ -16.8, 18.8) with a wide bracket
      LambdaSearchSettings wide = exact_settings();
      wide.lambda_min = -40;
      wide.lambda_max = 42;
      const double err = gradient_fd_error(s.h, wide, 2e-6);  // lambda* curves strongly here
      CHECK(err < 1e-6);
      worst[0] = std::max(worst[0], err);
      continue;
    }
    if (s.h.size() > 128) continue;
    for (int q = 0; q < 4; ++q) {
      INFO("newton k (0 = exact) " << ks[q]);
      const LambdaSearchSettings set = ks[q] == 0 ? exact_settings() : newton_settings(ks[q]);
      const double err = gradient_fd_error(s.h, set, 1e-5);
      CHECK(err < 1e-6);
      worst[q] = std::max(worst[q], err);
    }
  }
  std::printf("lambda_search: max FD error / max |grad| (double): exact %.1e, newton1 %.1e, newton2 %.1e, newton4 %.1e\n",
              worst[0], worst[1], worst[2], worst[3]);
}

TEST_CASE("lambda_gradient in float: finite differences and the double gradient", "[lambda_search]") {
  double worst_fd = 0, worst_vs_double = 0;
  for (const RefSample& s : reference_samples()) {
    if (s.h.size() != 128) continue;
    INFO(s.name);
    const std::vector<float> hf = as<float>(s.h);
    const std::vector<double> hd(hf.begin(), hf.end());  // the same values in double
    for (int k : {0, 1, 2, 4}) {
      INFO("newton k (0 = exact) " << k);
      const LambdaSearchSettings set = k == 0 ? exact_settings() : newton_settings(k);
      const double err = gradient_fd_error(hf, set, 4e-3f);
      CHECK(err < 2e-2);
      worst_fd = std::max(worst_fd, err);
      const LambdaTrace<float> tf = search_one(hf, set);
      const LambdaTrace<double> td = search_one(hd, set);
      double scale = 0, diff = 0;
      for (std::size_t j = 0; j < hf.size(); ++j) {
        const double gd = nm::lambda_gradient(hd[j], td);
        scale = std::max(scale, std::abs(gd));
        diff = std::max(diff, std::abs(double(nm::lambda_gradient(hf[j], tf)) - gd));
      }
      CHECK(diff < 1e-3 * scale);
      worst_vs_double = std::max(worst_vs_double, diff / scale);
    }
  }
  std::printf("lambda_search: float gradient: FD error %.1e, vs double %.1e (relative to max |grad|)\n",
              worst_fd, worst_vs_double);
}

TEST_CASE("no interior optimum in the bracket: clamped, zero gradient", "[lambda_search]") {
  const auto& samples = reference_samples();
  auto find = [&](const std::string& name) -> const RefSample& {
    for (const RefSample& s : samples)
      if (s.name == name) return s;
    FAIL("no sample " << name);
    return samples.front();
  };
  const RefSample& left = find("lognormal/1024");       // lambda* ~ -0.91
  const RefSample& right = find("neg_lognormal/1024");  // lambda* ~ 1.97
  LambdaSearchSettings set = exact_settings();
  set.lambda_min = 0.5;
  set.lambda_max = 3.0;
  LambdaTrace<double> tr = search_one(left.h, set);
  CHECK(tr.status == LambdaStatus::clamped_low);
  CHECK(tr.lambda == 0.5);
  CHECK(tr.steps == 0);
  CHECK(nm::lambda_gradient(left.h[5], tr) == 0.0);
  CHECK(nll(left.h, 0.5L) < nll(left.h, 0.5L + 1e-3L));  // l' > 0 at the limit: the optimum is below
  set.lambda_min = -1.0;
  set.lambda_max = 1.5;
  tr = search_one(right.h, set);
  CHECK(tr.status == LambdaStatus::clamped_high);
  CHECK(tr.lambda == 1.5);
  CHECK(nm::lambda_gradient(right.h[5], tr) == 0.0);
  // The same in float, and newton(k) clamps its steps into the bracket.
  CHECK(search_one(as<float>(right.h), set).status == LambdaStatus::clamped_high);
  LambdaSearchSettings ns = newton_settings(3);
  ns.lambda_min = 0.5;
  const LambdaTrace<double> tn = search_one(left.h, ns);
  CHECK(tn.lambda >= 0.5);
  // Within the default bracket, the result is unchanged by a wider one.
  LambdaSearchSettings wide = exact_settings();
  wide.lambda_min = -30;
  wide.lambda_max = 32;
  CHECK(std::abs(search_one(left.h, wide).lambda - search_one(left.h, exact_settings()).lambda) < 1e-12);
}

TEMPLATE_TEST_CASE("far from standardized: re-centring, and newton(k) stalling where l'' is unusable", "[lambda_search]", double, float) {
  using T = TestType;
  // Three values near -1e4 and five near 0.4: the shifted sums of one iterate cancel
  // at the next (the search re-centres), and Newton from 1 runs to lambda ~ -50,
  // where (1 + 1e4)^(2 - lambda) overflows.
  const std::vector<T> h = {T(-1e4), T(-9e3), T(-8e3), T(0.5), T(0.4), T(0.45), T(0.42), T(0.41)};
  LambdaSearchSettings set = exact_settings();
  set.lambda_min = -100;
  set.lambda_max = 100;
  const LambdaTrace<T> ex = search_one(h, set);
  CHECK(ex.status == LambdaStatus::ok);
  CHECK(ex.passes > ex.iterations);  // at least one re-centring pass
  CHECK(nll(h, ex.lambda) <= nll(h, ex.lambda + 1e-3L));
  CHECK(nll(h, ex.lambda) <= nll(h, ex.lambda - 1e-3L));
  if (std::is_same_v<T, float>) CHECK(ex.lambda == Approx(search_one(as<double>(std::vector<double>(h.begin(), h.end())), set).lambda).epsilon(1e-5));
  set.kind = LambdaSearchKind::newton;
  set.newton_steps = 6;
  const LambdaTrace<T> st = search_one(h, set);
  CHECK(st.status == LambdaStatus::stalled);
  REQUIRE(st.steps >= 1);
  REQUIRE(st.steps < 6);
  // lambda stays at the last usable iterate: the same as newton(steps), which did not stall.
  set.newton_steps = st.steps;
  const LambdaTrace<T> fewer = search_one(h, set);
  CHECK(fewer.status == LambdaStatus::ok);
  CHECK(fewer.lambda == st.lambda);
  for (T v : h) CHECK(nm::lambda_gradient(v, fewer) == nm::lambda_gradient(v, st));
}

TEST_CASE("degenerate and non-finite groups, bad settings", "[lambda_search]") {
  for (const LambdaSearchSettings& set : {exact_settings(), newton_settings(2)}) {
    const LambdaTrace<double> zero = search_one(std::vector<double>(10, 0.0), set);
    CHECK(zero.status == LambdaStatus::degenerate);
    CHECK(zero.lambda == 1.0);
    CHECK(nm::lambda_gradient(0.0, zero) == 0.0);
    CHECK(search_one(std::vector<double>(1, 0.7), set).status == LambdaStatus::degenerate);
    CHECK(search_one(std::vector<double>{}, set).status == LambdaStatus::degenerate);
    CHECK(search_one(std::vector<float>(9, 2.5f), set).status == LambdaStatus::degenerate);
    std::vector<double> bad = {0.5, -1.0, std::numeric_limits<double>::quiet_NaN(), 0.2};
    const LambdaTrace<double> nan = search_one(bad, set);
    CHECK(nan.status == LambdaStatus::non_finite);
    CHECK(std::isnan(nan.lambda));
  }
  LambdaTrace<double> tr;
  const double h[2] = {1.0, -1.0};
  LambdaSearchSettings set;
  set.lambda_min = 1.5;
  CHECK_THROWS_AS((nm::search_lambda<double, nm::scalar_arch>(h, 2, 1, set, &tr)), std::invalid_argument);
  set = newton_settings(nm::kMaxNewtonSteps + 1);
  CHECK_THROWS_AS((nm::search_lambda<double, nm::scalar_arch>(h, 2, 1, set, &tr)), std::invalid_argument);
  set = exact_settings();
  set.max_iterations = 0;
  CHECK_THROWS_AS((nm::search_lambda<double, nm::scalar_arch>(h, 2, 1, set, &tr)), std::invalid_argument);
  // newton(0): lambda stays 1 and has no gradient.
  const LambdaTrace<double> n0 = search_one(reference_samples().front().h, newton_settings(0));
  CHECK(n0.lambda == 1.0);
  CHECK(n0.steps == 0);
}

TEST_CASE("print the estimator table of docs/lambda-search.md", "[.lambda_table]") {
  std::printf("| sample | M | one-step (paper) | newton(1) | newton(2) | newton(4) | exact | scipy | |one-step - exact| |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const RefSample& s : reference_samples()) {
    const std::string name = s.name.substr(0, s.name.find('/'));
    double n[3];
    const int ks[3] = {1, 2, 4};
    for (int q = 0; q < 3; ++q) n[q] = search_one(s.h, newton_settings(ks[q])).lambda;
    const LambdaTrace<double> ex = search_one(s.h, exact_settings());
    const std::string note = ex.status == LambdaStatus::ok ? "" : std::string(" (") + status_name(ex.status) + ")";
    std::printf("| %s | %zu | %.4f | %.4f | %.4f | %.4f | %.6f%s | %.6f | %.3f |\n", name.c_str(), s.h.size(), s.one_step,
                n[0], n[1], n[2], ex.lambda, note.c_str(), s.scipy, std::abs(s.one_step - ex.lambda));
  }
}
