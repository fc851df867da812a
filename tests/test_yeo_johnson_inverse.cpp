// Tests for include/normnorm/math/yeo_johnson_inverse.hpp: the inverses of the
// true Yeo-Johnson transform and of the layer's shifted one (PowerTransform),
// float and double, SIMD and scalar. Accuracy is judged against long double
// with the inverse's own conditioning: an error of k ulp in y moves h by
// k ulp * |y| * dh/dy, dh/dy = 1 / psi_h = (1 + |h|)^(1 - e) (e the side's
// exponent), and an error of k ulp in L = log1p(|h|) (the inverse's intermediate)
// moves h by k ulp * L * (1 + |h|); so the bound is
//   |h - h_ref| <= C eps (1 + L) (|h_ref| + |y| (1 + |h_ref|)^(1 - e)),  C = 4.
// The forward, likewise, is held to 8 eps (1 + |e L|) |y| (the rounding of t = e L).

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "normnorm/math/yeo_johnson_inverse.hpp"

namespace {

namespace nm = normnorm::math;
using normnorm::index_t;

constexpr double kSqrtEps = 0.0031622776601683794;  // sqrt(1e-5), the layer's default

// A transform under test: the true one (shift = 0) or the layer's shifted one.
struct Variant {
  bool shifted;
  double lambda;
  // The exponent e of the side h (or y) falls on, in long double, and whether it is a log side.
  long double exponent(bool nonneg) const {
    const long double eta = nonneg ? lambda : 2.0L - lambda;
    if (!shifted) return eta;
    if (std::fabs(eta) <= kSqrtEps) return 0;
    return eta + (eta >= 0 ? kSqrtEps : -kSqrtEps);
  }
  template <class T> nm::PowerTransform<T> pt() const { return nm::PowerTransform<T>::make(lambda, kSqrtEps, true); }
  template <class V> V forward(const V& h) const {
    using T = typename nm::lane_traits<V>::scalar;
    return shifted ? nm::power_transform(h, pt<T>()) : nm::yeo_johnson(h, T(lambda));
  }
  template <class V> V inverse(const V& y) const {
    using T = typename nm::lane_traits<V>::scalar;
    return shifted ? nm::power_transform_inverse(y, pt<T>()) : nm::yeo_johnson_inverse(y, T(lambda));
  }
  // Long-double references.
  long double forward_ref(long double h) const {
    const long double e = exponent(h >= 0), L = std::log1p(std::fabs(h));
    const long double m = e == 0 ? L : std::expm1(e * L) / e;
    return h >= 0 ? m : -m;
  }
  long double inverse_ref(long double y) const {
    const long double e = exponent(y >= 0), m = std::fabs(y);
    const long double L = e == 0 ? m : std::log1p(e * m) / e;
    return y >= 0 ? std::expm1(L) : -std::expm1(L);
  }
  // The scale an error of one unit of eps in y (and in h) is allowed to reach in h.
  long double error_scale(long double h, long double y) const {
    const long double e = exponent(h >= 0), L = std::log1p(std::fabs(h));
    return (1 + L) * (std::fabs(h) + std::fabs(y) * std::pow(1 + std::fabs(h), 1 - e)) +
           std::numeric_limits<long double>::min();
  }
  long double forward_scale(long double h) const {
    const long double e = exponent(h >= 0), L = std::log1p(std::fabs(h));
    return (1 + std::fabs(e * L)) * std::fabs(forward_ref(h));
  }
};

std::vector<double> lambdas() {
  std::vector<double> out;
  for (int i = 0; i <= 32; ++i) out.push_back(-3.0 + 0.25 * i);  // [-3, 5], includes 0, 1, 2
  for (double special : {kSqrtEps, -kSqrtEps, 2 - kSqrtEps, 2 + kSqrtEps, 0.5 * kSqrtEps, 1e-9, 2 - 1e-9, 1e-300})
    out.push_back(special);
  return out;
}

std::vector<double> magnitudes() {
  std::vector<double> out = {0.0, 1e-30, 1e-12, 1e-7, 1e-4, 0.01, 0.3, 1.0, 2.0, 7.5, 30.0, 200.0, 1e3, 1e4};
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-6.0, 3.0);
  for (int i = 0; i < 40; ++i) out.push_back(std::pow(10.0, u(rng)));
  return out;
}

template <class T>
constexpr double kTolUlps = 4;

}  // namespace

TEMPLATE_TEST_CASE("inverse round trips and matches long double", "[inverse]", double, float) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  double worst_rt = 0, worst_inv = 0;
  int checked = 0;
  for (bool shifted : {false, true}) {
    for (double lam : lambdas()) {
      const Variant v{shifted, lam};
      for (double mag : magnitudes()) {
        for (double sign : {1.0, -1.0}) {
          const T h = T(sign * mag);
          const T y = v.forward(h);
          if (!std::isfinite(y)) continue;  // the forward overflowed
          INFO((shifted ? "shifted" : "true") << " lambda " << lam << " h " << double(h) << " y " << double(y));
          const long double scale = v.error_scale(h, y);
          // forward then inverse
          const T back = v.inverse(y);
          if (!std::isfinite(back)) {
            // Only where the forward rounded y onto (Inf) or just past (NaN) the edge
            // of the range, |y| = -1/e.
            const long double e = v.exponent(h >= 0);
            CHECK(e < 0);
            CHECK(std::fabs(1 + e * std::fabs(static_cast<long double>(y))) <= 8 * eps);
            continue;
          }
          const double rt = static_cast<double>(std::fabs(back - static_cast<long double>(h)) / (eps * scale));
          CHECK(rt <= kTolUlps<T>);
          worst_rt = std::max(worst_rt, rt);
          // the inverse alone, against long double from the same y
          const long double ref = v.inverse_ref(y);
          if (std::isfinite(static_cast<double>(ref))) {
            const double err = static_cast<double>(std::fabs(back - ref) / (eps * v.error_scale(ref, y)));
            CHECK(err <= kTolUlps<T>);
            worst_inv = std::max(worst_inv, err);
          }
          // the forward too (the round trip's other half), against long double
          CHECK(std::fabs(y - v.forward_ref(h)) <= 8 * eps * v.forward_scale(h) + std::numeric_limits<T>::min());
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 4000);
  std::printf("inverse<%s>: %d points, max round-trip error %.2f, max inverse error %.2f (eps * conditioned scale)\n",
              sizeof(T) == 8 ? "double" : "float", checked, worst_rt, worst_inv);
}

TEMPLATE_TEST_CASE("inverse: SIMD lanes agree with the scalar path", "[inverse]", double, float) {
  using T = TestType;
  using B = xsimd::batch<T>;
  constexpr index_t W = static_cast<index_t>(B::size);
  const long double eps = std::numeric_limits<T>::epsilon();
  std::vector<T> ys;
  for (double m : magnitudes()) { ys.push_back(T(m)); ys.push_back(T(-m)); }
  ys.push_back(T(-0.0));
  while (ys.size() % static_cast<std::size_t>(W) != 0) ys.push_back(T(0.5));
  for (bool shifted : {false, true}) {
    for (double lam : lambdas()) {
      const Variant v{shifted, lam};
      for (std::size_t i = 0; i < ys.size(); i += static_cast<std::size_t>(W)) {
        T lanes[W], fwd[W];
        v.inverse(B::load_unaligned(ys.data() + i)).store_unaligned(lanes);
        v.forward(B::load_unaligned(ys.data() + i)).store_unaligned(fwd);
        for (index_t w = 0; w < W; ++w) {
          const T y = ys[i + static_cast<std::size_t>(w)];
          INFO((shifted ? "shifted" : "true") << " lambda " << lam << " y " << double(y));
          const T s = v.inverse(y);
          if (std::isnan(s) || std::isinf(s)) {
            CHECK((std::isnan(s) ? std::isnan(lanes[w]) : lanes[w] == s));
          } else {
            CHECK(std::fabs(static_cast<long double>(lanes[w]) - s) <= 8 * eps * v.error_scale(s, y));
          }
          const T f = v.forward(y);  // the forward, as h
          if (std::isfinite(f)) CHECK(std::fabs(static_cast<long double>(fwd[w]) - f) <= 8 * eps * v.forward_scale(y) + std::numeric_limits<T>::min());
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("inverse: outside the range, at its edge, and special values", "[inverse]", double, float) {
  using T = TestType;
  using B = xsimd::batch<T>;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  auto both = [](auto f, T y) {  // scalar result, and check the SIMD lanes give the same
    const T s = f(y);
    T lanes[B::size];
    f(B(y)).store_unaligned(lanes);
    if (std::isnan(s)) CHECK(std::isnan(lanes[0]));
    else CHECK(lanes[0] == Approx(s).epsilon(1e-5));
    return s;
  };
  // True transform, lambda = -1: the h >= 0 side maps onto [0, 1).
  auto inv_m1 = [](auto y) { return nm::yeo_johnson_inverse(y, T(-1)); };
  CHECK(std::isfinite(both(inv_m1, T(0.999))));
  CHECK(both(inv_m1, T(1)) == inf);
  CHECK(std::isnan(both(inv_m1, T(1.5))));
  CHECK(std::isnan(both(inv_m1, inf)));
  CHECK(both(inv_m1, -inf) == -inf);  // the h < 0 side has eta = 3: unbounded
  // lambda = 3: the h < 0 side (eta = -1) maps onto (-1, 0].
  auto inv_3 = [](auto y) { return nm::yeo_johnson_inverse(y, T(3)); };
  CHECK(both(inv_3, T(-1)) == -inf);
  CHECK(std::isnan(both(inv_3, T(-2))));
  CHECK(both(inv_3, T(1e6)) == Approx(std::expm1(std::log1p(3e6) / 3)).epsilon(1e-5));
  // lambda = 0 and 2 (log sides) have no edge.
  CHECK(both([](auto y) { return nm::yeo_johnson_inverse(y, T(0)); }, T(50)) == Approx(std::expm1(50.0)).epsilon(1e-5));
  CHECK(both([](auto y) { return nm::yeo_johnson_inverse(y, T(2)); }, -inf) == -inf);
  // Shifted transform, lambda = -1: exponent -1 - c, so the edge is 1 / (1 + c).
  const auto pt = nm::PowerTransform<T>::make(-1.0, kSqrtEps, true);
  auto inv_pt = [&](auto y) { return nm::power_transform_inverse(y, pt); };
  CHECK(std::isfinite(both(inv_pt, T(0.99))));
  CHECK(std::isnan(both(inv_pt, T(1.0))));  // beyond 1 / (1 + c)
  // Zero, NaN and the identity.
  CHECK(both(inv_m1, T(0)) == T(0));
  CHECK(both(inv_m1, T(-0.0)) == T(0));
  CHECK(std::isnan(both(inv_m1, nan)));
  const auto id = nm::PowerTransform<T>::make(0.3, kSqrtEps, false);
  CHECK(nm::power_transform_inverse(T(-2.5), id) == T(-2.5));
  // sklearn's inverse_transform formula on a few values (double arithmetic).
  for (double lam : {-1.5, 0.5, 1.0, 2.7}) {
    for (double y : {-0.3, 0.05, 0.4}) {
      const double pos = std::pow(y * lam + 1, 1 / lam) - 1;
      const double neg = 1 - std::pow(-(2 - lam) * y + 1, 1 / (2 - lam));
      CHECK(double(nm::yeo_johnson_inverse(T(y), T(lam))) == Approx(y >= 0 ? pos : neg).epsilon(1e-5));
    }
  }
}
