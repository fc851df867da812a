// The SIMD path against the scalar path on random configurations with shapes
// that leave tails after every SIMD width, and the lane-generic math against
// the long-double reference formulas.

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "path_comparison.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

TEMPLATE_TEST_CASE("SIMD and scalar paths agree on random configurations", "[simd]", float, double) {
  compare_path_with_scalar<TestType>(SimdPath::native);
}

TEMPLATE_TEST_CASE("Every SIMD path this program holds agrees with the scalar path", "[simd][dispatch]", float, double) {
  for (const SimdPathInfo& info : available_simd_paths()) {
    if (info.path == SimdPath::scalar || info.path == SimdPath::native) continue;  // native: the test above
    compare_path_with_scalar<TestType>(info.path, 20);
  }
  // automatic resolves to one of them, never to the scalar path.
  CHECK(std::string(resolved_simd_arch()) != "scalar");
  CHECK(std::string(resolved_simd_arch(SimdPath::native)) == xsimd::default_arch::name());
}

TEST_CASE("A SIMD path this program does not hold is an invalid_argument that writes nothing", "[simd][dispatch]") {
  if (engine::simd_dispatch_built) return;  // this binary has every path (tests/dispatch covers it)
  FormCase fc{LayerConfig::batch_normal_norm_2d(4), Shape{3, 4, 5, 6}};
  Harness<float> layer(fc.config, fc.shape);
  layer.randomize(7);
  layer.noise = NoiseSource<float>::philox(1, 2);
  for (SimdPath path : {SimdPath::sse2, SimdPath::avx2, SimdPath::avx512}) {
    layer.execution.simd_path = path;
    const auto running_before = layer.running_mean;
    const auto out_before = layer.out;
    try {
      layer.forward(Mode::train);
      FAIL("no error for an absent path");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains("not built into this program"));
    }
    CHECK(layer.running_mean == running_before);
    CHECK(layer.out == out_before);
    CHECK(layer.batches == 0);
  }
}

TEMPLATE_TEST_CASE("the transform and its derivatives match the reference formulas", "[simd][math]", float, double) {
  using T = TestType;
  using B = xsimd::batch<T>;
  constexpr std::size_t width = B::size;
  const double c = std::sqrt(1e-5);
  const double tol = sizeof(T) == 8 ? 1e-12 : 4e-6;
  const double derivative_tol = sizeof(T) == 8 ? 1e-6 : 1e-5;  // the reference is a finite difference
  for (double lambda : {-1.5, -0.2, 0.0, c / 2, 0.5, 1.0, 1.0 + 1e-9, 1.7, 2.0, 2.0 - c / 2, 3.0}) {
    const auto pt = math::PowerTransform<T>::make(lambda, c, true);
    for (double start : {-6.0, -1.0, -1e-3, 0.0, 1e-6, 0.7, 5.0}) {
      alignas(64) T h[width], y[width], psi_h[width], psi_l[width];
      for (std::size_t l = 0; l < width; ++l) h[l] = T(start + 0.37 * double(l) * (start == 0 ? 1e-3 : std::abs(start)));
      const auto wide = math::power_transform_derivatives(B::load_aligned(h), pt);
      wide.y.store_aligned(y);
      wide.psi_h.store_aligned(psi_h);
      wide.psi_l.store_aligned(psi_l);
      for (std::size_t l = 0; l < width; ++l) {
        INFO("lambda " << lambda << " h " << h[l]);
        const long double hl = h[l];
        const long double want = reference_transform(hl, lambda, c);
        const long double dh = 1e-7L * std::max(1.0L, std::fabs(hl)), dl = 1e-7L;
        const long double want_psi_h = (reference_transform(hl + dh, lambda, c) - reference_transform(hl - dh, lambda, c)) / (2 * dh);
        // dy/dlambda only exists away from the log side's boundary.
        const bool smooth = std::abs(std::abs(1 + (hl >= 0 ? 1 : -1) * (lambda - 1)) - c) > 1e-6;
        const long double want_psi_l = (reference_transform(hl, lambda + dl, c) - reference_transform(hl, lambda - dl, c)) / (2 * dl);
        const double scale = 1.0 + std::abs(double(want));
        CHECK(std::abs(double(y[l]) - double(want)) <= tol * scale);
        CHECK(std::abs(double(psi_h[l]) - double(want_psi_h)) <= derivative_tol * (1 + std::abs(double(want_psi_h))));
        if (smooth) CHECK(std::abs(double(psi_l[l]) - double(want_psi_l)) <= 2 * derivative_tol * (1 + std::abs(double(want_psi_l))));
        // The scalar path gives the same values.
        const auto one = math::power_transform_derivatives(h[l], pt);
        CHECK(std::abs(double(one.y) - double(y[l])) <= tol * scale);
        CHECK(std::abs(double(one.psi_l) - double(psi_l[l])) <= tol * (1 + std::abs(double(psi_l[l]))));
      }
    }
  }
}

TEST_CASE("psi_l is continuous where its series takes over", "[math]") {
  // t = et * L crosses 0.05: the series and the direct form must agree there.
  const double c = std::sqrt(1e-5);
  const auto pt = math::PowerTransform<double>::make(0.05, c, true);  // et about 0.053 on h >= 0
  for (double h : {0.5, 1.5, 2.0, 2.5, 3.0}) {
    const double below = math::power_transform_derivatives(h * (1 - 1e-9), pt).psi_l;
    const double above = math::power_transform_derivatives(h * (1 + 1e-9), pt).psi_l;
    CHECK(below == Approx(above).epsilon(1e-7));
  }
}

TEMPLATE_TEST_CASE("psi_h keeps its relative accuracy on both sides of t = -1, lane by lane", "[simd][math]", float,
                   double) {
  // psi_h = exp(t) / (1 + a), t = et L: from expm1(t) + 1 where t >= -1, from exp(t)
  // below, where expm1(t) + 1 loses its digits. Each batch mixes both kinds of lanes.
  using T = TestType;
  using B = xsimd::batch<T>;
  constexpr std::size_t width = B::size;
  const double c = std::sqrt(1e-5);
  // t's own rounding (L's and the exponent's) carries over into exp(t) times |t|.
  const double tol = sizeof(T) == 8 ? 4e-15 : 6e-7;
  for (double lambda : {-1.5, -0.2, 2.6, 3.0}) {
    const auto pt = math::PowerTransform<T>::make(lambda, c, true);
    // The side with the negative exponent: h >= 0 when lambda < 0, h < 0 when lambda > 2.
    const double sign = lambda < 0 ? 1.0 : -1.0;
    const double exponent = lambda < 0 ? lambda - c : 2.0 - lambda - c;
    for (double far : {3.0, 30.0, 3e4, 3e7}) {
      alignas(64) T h[width], psi_h[width];
      for (std::size_t l = 0; l < width; ++l) h[l] = T(sign * (l % 2 == 0 ? 0.05 * double(l + 1) : far * double(l)));
      math::power_transform_derivatives(B::load_aligned(h), pt).psi_h.store_aligned(psi_h);
      for (std::size_t l = 0; l < width; ++l) {
        const long double a = std::fabs(static_cast<long double>(h[l]));
        const long double want = std::exp(static_cast<long double>(exponent) * std::log1p(a)) / (1 + a);
        const double t = exponent * std::log1p(double(a));
        INFO("lambda " << lambda << " h " << h[l] << " t " << t);
        const long double bound = tol * (1 + std::fabs(t)) * want;
        CHECK(std::fabs(static_cast<long double>(psi_h[l]) - want) <= bound);
        const T one = math::power_transform_derivatives(h[l], pt).psi_h;
        CHECK(std::fabs(static_cast<long double>(one) - want) <= bound);
      }
    }
  }
}
