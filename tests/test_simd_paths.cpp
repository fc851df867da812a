// The SIMD path against the scalar path on random configurations with shapes
// that leave tails after every SIMD width, and the lane-generic math against
// the long-double reference formulas.

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

TEMPLATE_TEST_CASE("SIMD and scalar paths agree on random configurations", "[simd]", float, double) {
  std::mt19937 rng(2024);
  auto pick = [&](int n) { return static_cast<index_t>(std::uniform_int_distribution<int>(1, n)(rng)); };
  const double tol = sizeof(TestType) == 8 ? 1e-12 : 2e-5;
  for (int trial = 0; trial < 60; ++trial) {
    const int form = trial % 5;
    Options o = default_options(static_cast<Form>(form));
    o.order = 1 + trial % 2;
    o.standardize = trial % 7 != 3;
    o.affine = trial % 3 != 1;
    const index_t n = 1 + pick(5), c = 2 * pick(3), h = pick(9), w = pick(11);
    FormCase fc{LayerConfig::batch_normal_norm_2d(c, o), Shape{n, c, h, w}};
    if (form == 0) fc = {LayerConfig::batch_normal_norm_1d(c, o), Shape{n + 7, c}};
    if (form == 2) fc = {LayerConfig::layer_normal_norm(Shape{h, w}, o), Shape{n, h, w}};
    if (form == 3) fc = {LayerConfig::group_normal_norm(2, c, o), Shape{n, c, h, w}};
    if (form == 4) fc = {LayerConfig::instance_normal_norm_2d(c, o), Shape{n, c, h, w + 1}};
    INFO("trial " << trial << ": " << fc.config.name() << " " << fc.shape.to_string());
    Harness<TestType> simd(fc.config, fc.shape), scalar(fc.config, fc.shape);
    simd.randomize(static_cast<unsigned>(trial));
    scalar.randomize(static_cast<unsigned>(trial));
    scalar.execution.simd = false;
    for (auto* layer : {&simd, &scalar}) layer->noise = NoiseSource<TestType>::philox(99, static_cast<std::uint64_t>(trial));
    for (Mode mode : {Mode::train, Mode::eval}) {
      simd.forward(mode);
      scalar.forward(mode);
      simd.backward();
      scalar.backward();
      auto compare = [&](const std::vector<TestType>& a, const std::vector<TestType>& b, const char* what) {
        double scale = 1;
        for (auto v : b) scale = std::max(scale, std::abs(double(v)));
        for (std::size_t i = 0; i < a.size(); ++i) {
          INFO(what << "[" << i << "] " << a[i] << " vs " << b[i]);
          REQUIRE(std::abs(double(a[i]) - double(b[i])) <= tol * scale);
        }
      };
      compare(simd.out, scalar.out, "output");
      compare(simd.grad_x, scalar.grad_x, "grad_x");
      compare(simd.grad_weight, scalar.grad_weight, "grad_weight");
      compare(simd.grad_bias, scalar.grad_bias, "grad_bias");
      compare(simd.running_lambda, scalar.running_lambda, "running_lambda");
    }
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
