// Numerical extremes (docs/reliability.md): what normnorm does with zero-variance
// groups, groups of two values, all-equal-but-one groups, values near the limits of
// float and double, and inputs that drive the one-step lambda far from 1. Each test
// pins the current behaviour; the [!mayfail] ones state the behaviour we want and
// fail until the library gets there (the report names the fix).

#include <normnorm/normnorm.hpp>  // first: defines EIGEN_USE_THREADS before Eigen's Tensor

#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// One channel of `values` as a BatchNormalNorm1d input (N, 1).
template <class T>
Harness<T> one_group(const std::vector<double>& values, Options o) {
  Harness<T> layer(LayerConfig::batch_normal_norm_1d(1, o), Shape{static_cast<index_t>(values.size()), 1});
  for (std::size_t i = 0; i < values.size(); ++i) layer.x[i] = T(values[i]);
  layer.weight = {T(1.5)};
  layer.bias = {T(-0.25)};
  for (std::size_t i = 0; i < values.size(); ++i) layer.grad_out[i] = T(std::sin(1.0 + double(i)));
  return layer;
}

Options no_noise(Form form = Form::batch_1d) {
  Options o = default_options(form);
  o.noise_train = 0;
  return o;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
std::vector<double> as_double(const std::vector<double>& v) { return v; }

// The long-double reference of the spec, on the values the layer actually saw.
template <class T>
std::vector<double> reference_out(const Harness<T>& layer, Mode mode) {
  ReferenceRunning running(static_cast<std::size_t>(layer.config.num_running()));
  return reference_forward(layer.config, mode, as_double(layer.x), layer.shape, as_double(layer.weight),
                           as_double(layer.bias), &running, {})
      .out;
}

}  // namespace

// ---- zero-variance groups ------------------------------------------------------------

TEMPLATE_TEST_CASE("A zero-variance group: h = 0, lambda = 1, output = beta, grad_x = gamma (g - mean g) / sqrt(eps)",
                   "[extremes]", float, double) {
  using T = TestType;
  for (const FormCase& fc : form_cases(Options{}, false)) {
    for (bool simd : {true, false}) {
      INFO(fc.config.name() << (simd ? " SIMD" : " scalar"));
      Harness<T> layer(fc.config, fc.shape);
      layer.randomize(5);
      layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      layer.noise = NoiseSource<T>::philox(1, 2);  // noise scaled by a zero spread adds nothing
      std::fill(layer.x.begin(), layer.x.end(), T(3));  // every group constant, its sum exact
      layer.forward(Mode::train);
      const ReferenceGroups groups = reference_groups(fc.config, fc.shape);
      for (std::size_t g = 0; g < groups.members.size(); ++g) {
        CHECK(layer.context.mean[g] == 3.0);
        CHECK(layer.context.var[g] == 0.0);
        CHECK(layer.context.lambda[g] == 1.0);
        CHECK(layer.context.noise_scale[g] == 0.0);
      }
      for (std::size_t i = 0; i < layer.x.size(); ++i) {
        INFO("element " << i);
        CHECK(layer.out[i] == layer.bias[groups.affine_index[i]]);  // exactly beta
      }
      layer.backward();
      const double r = 1.0 / std::sqrt(fc.config.options.eps);
      for (const auto& members : groups.members) {
        double mean_u = 0;
        for (auto i : members) mean_u += double(layer.weight[groups.affine_index[i]]) * double(layer.grad_out[i]);
        mean_u /= double(members.size());
        for (auto i : members) {
          const double u = double(layer.weight[groups.affine_index[i]]) * double(layer.grad_out[i]);
          const double want = r * (u - mean_u);
          CHECK(double(layer.grad_x[i]) == Approx(want).epsilon(sizeof(T) == 4 ? 1e-4 : 1e-12).margin(1e-9 * r));
        }
      }
      // The running statistics of the batch forms: mean 3, variance 0, lambda 1, norm 0, blended in.
      if (fc.config.has_running_stats())
        for (std::size_t c = 0; c < layer.running_lambda.size(); ++c) {
          CHECK(double(layer.running_lambda[c]) == Approx(1.0).epsilon(1e-15));
          CHECK(double(layer.running_var[c]) == Approx(0.9));  // 0.1 * 0 + 0.9 * 1
        }
    }
  }
}

TEST_CASE("A constant float group whose sum is inexact: the output stays within 1e-3 of beta", "[extremes]") {
  // The float partial sums of 0.1f round, but the mean (a double, cast back to float)
  // lands on 0.1f again, so today h is exactly 0; if it did not, h would be roundoff
  // times 1/sqrt(eps) and lambda a Newton step on noise -- bounded, hence the loose checks.
  for (int n : {7, 100, 4096}) {
    INFO(n << " values of 0.1f");
    Harness<float> layer = one_group<float>(std::vector<double>(static_cast<std::size_t>(n), 0.1), no_noise());
    layer.forward(Mode::train);
    layer.backward();
    CHECK(std::abs(layer.context.lambda[0] - 1.0) < 0.05);
    for (std::size_t i = 0; i < layer.x.size(); ++i) {
      CHECK(std::abs(double(layer.out[i]) - double(layer.bias[0])) <= 1e-3);
      CHECK(std::isfinite(layer.grad_x[i]));
    }
  }
}

TEST_CASE("eps = 0 and a zero-variance group in evaluation: the group's outputs are NaN", "[extremes]") {
  Options o = no_noise(Form::layer);
  o.eps = 0;
  Harness<double> layer(LayerConfig::layer_normal_norm(Shape{4}, o), Shape{2, 4});
  layer.x = {1, 2, 3, 5, 7, 7, 7, 7};  // row 1 is constant: rstd = 1 / sqrt(0) = Inf, h = 0 * Inf = NaN
  layer.forward(Mode::eval);
  for (int i = 0; i < 4; ++i) CHECK(std::isfinite(layer.out[static_cast<std::size_t>(i)]));
  for (int i = 4; i < 8; ++i) CHECK(std::isnan(layer.out[static_cast<std::size_t>(i)]));
}

TEST_CASE("Evaluation whose lambda sums overflow T: the group's outputs are NaN on every path", "[extremes]") {
  // Without standardization h = x: at |x| ~ 1e18 the float terms h d and d^2 pass FLT_MAX,
  // and which lanes overflow first depends on rounding (the fuzzer found SIMD lambda 1 against
  // scalar NaN). The group counts as non-finite, as NaN input does: all NaN, other groups
  // untouched; training refuses it.
  Options o = no_noise(Form::layer);
  o.standardize = false;
  for (bool simd : {true, false}) {
    INFO("simd " << simd);
    Harness<float> layer(LayerConfig::layer_normal_norm(Shape{8}, o), Shape{2, 8});
    layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    layer.x = {-1.4e18f, 8.6e17f, 1e9f, -1.3e9f, 0.5f, -2e-16f, 3e17f, -7e17f,  // sums overflow float
               0.1f, -0.4f, 0.3f, 1.2f, -0.8f, 0.05f, 0.6f, -0.2f};
    layer.forward(Mode::eval);
    for (int i = 0; i < 8; ++i) CHECK(std::isnan(layer.out[static_cast<std::size_t>(i)]));
    for (int i = 8; i < 16; ++i) CHECK(std::isfinite(layer.out[static_cast<std::size_t>(i)]));
    CHECK_THROWS_AS(layer.forward(Mode::train), std::domain_error);
  }
}

TEST_CASE("eps = 0 and a zero-variance training group: a domain_error that names the cause, nothing changes", "[extremes]") {
  // 1 / sqrt(0 + 0) cannot standardize the group: the error says so (and does not blame
  // the finite input as NaN or Inf), with or without the power transform.
  for (bool power_transform : {true, false}) {
    INFO("power_transform " << power_transform);
    Options o = no_noise();
    o.eps = 0;
    o.power_transform = power_transform;
    Harness<double> layer = one_group<double>({4, 4, 4, 4}, o);
    const auto running = layer.running_var;
    std::fill(layer.out.begin(), layer.out.end(), -7.0);
    std::string message;
    try {
      layer.forward(Mode::train);
      FAIL("no exception");
    } catch (const std::domain_error& error) {
      message = error.what();
    }
    CHECK_THAT(message, Catch::Contains("zero variance and eps = 0") && Catch::Contains("group 0"));
    CHECK_THAT(message, !Catch::Contains("NaN or Inf"));
    CHECK(layer.running_var == running);
    CHECK(layer.batches == 0);
    for (double v : layer.out) CHECK(v == -7.0);
  }
}

// ---- groups of two values --------------------------------------------------------------

TEMPLATE_TEST_CASE("A group of two values: h = +-1/sqrt(1 + eps/v), lambda = 1, y = +-((1 + |h|)^(1+c) - 1)/(1+c)",
                   "[extremes]", float, double) {
  using T = TestType;
  for (const auto& pair : std::vector<std::vector<double>>{{0.3, 1.7}, {-5, 1e3}, {1, 1.0009765625}, {-1e-3, 1e-3}}) {
    INFO("values " << pair[0] << ", " << pair[1]);
    Harness<T> layer = one_group<T>(pair, no_noise());
    layer.forward(Mode::train);
    layer.backward();
    const double v = layer.context.var[0], eps = layer.config.options.eps, c = std::sqrt(eps);
    const double h = 1 / std::sqrt(1 + eps / v);
    CHECK(std::abs(layer.context.lambda[0] - 1.0) < (sizeof(T) == 4 ? 1e-4 : 1e-9));
    const double y = (std::pow(1 + h, 1 + c) - 1) / (1 + c);
    const double low = pair[0] < pair[1] ? -y : y;
    CHECK(double(layer.out[0]) == Approx(1.5 * low - 0.25).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-12));
    CHECK(double(layer.out[1]) == Approx(-1.5 * low - 0.25).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-12));
    const auto want = reference_out(layer, Mode::train);
    for (std::size_t i = 0; i < 2; ++i) CHECK(double(layer.out[i]) == Approx(want[i]).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-12));
    for (T g : layer.grad_x) CHECK(std::isfinite(g));
  }
}

// ---- all equal but one -------------------------------------------------------------------

TEMPLATE_TEST_CASE("All equal but one: finite, matches the long-double reference, lambda pulls the outlier in", "[extremes]",
                   float, double) {
  using T = TestType;
  for (int n : {3, 16, 256, 4096}) {
    for (double outlier : {1.0, -1.0, 1e6}) {
      INFO(n << " values, outlier " << outlier);
      std::vector<double> values(static_cast<std::size_t>(n), 2.0);
      values[static_cast<std::size_t>(n / 2)] = 2.0 + outlier;
      Harness<T> layer = one_group<T>(values, no_noise());
      layer.forward(Mode::train);
      layer.backward();
      const auto want = reference_out(layer, Mode::train);
      double scale = 0;
      for (double w : want) scale = std::max(scale, std::abs(w));
      for (std::size_t i = 0; i < values.size(); ++i) {
        REQUIRE(std::isfinite(layer.out[i]));
        REQUIRE(std::isfinite(layer.grad_x[i]));
        REQUIRE(std::abs(double(layer.out[i]) - want[i]) <= (sizeof(T) == 4 ? 1e-4 : 1e-10) * scale);
      }
      // One far value on one side: the Newton step compresses that side (lambda < 1 for a
      // right outlier, > 1 for a left one): about -3.2 / 5.2 for 16 values, -1.1 / 3.1 for 4096.
      const double lambda = layer.context.lambda[0];
      INFO("lambda " << lambda);
      if (n >= 16) CHECK((outlier > 0 ? lambda < 0.9 : lambda > 1.1));
      CHECK(std::abs(lambda) < 10);
    }
  }
}

// ---- values near the limits of the type --------------------------------------------------

TEST_CASE("Float training groups whose sums overflow float are rejected as NaN or Inf, nothing changes", "[extremes]") {
  // Deviations of 2e19 square to 4e38 > FLT_MAX: the variance overflows, and so does the
  // sum of values near FLT_MAX. Both are reported as a domain_error (docs/reliability.md).
  for (const auto& values : std::vector<std::vector<double>>{{2e19, -2e19, 2e19, -2e19}, {3e38, 3e38, -1, 2e38}}) {
    for (bool simd : {true, false}) {
      INFO(values[0] << (simd ? " SIMD" : " scalar"));
      Harness<float> layer = one_group<float>(values, no_noise());
      layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      std::fill(layer.out.begin(), layer.out.end(), -7.0f);
      const auto running = layer.running_var;
      CHECK_THROWS_AS(layer.forward(Mode::train), std::domain_error);
      CHECK(layer.running_var == running);
      CHECK(layer.batches == 0);
      for (float v : layer.out) CHECK(v == -7.0f);
    }
  }
}

TEST_CASE("Float training at 1e18 is scale-invariant: the same output as the data at scale 1", "[extremes]") {
  const std::vector<double> base = {0.3, 1.2, -0.7, 2.5, 0.1, -1.1, 0.9, 3.3};
  std::vector<double> scaled;
  for (double v : base) scaled.push_back(v * 1e18);
  Harness<float> small = one_group<float>(base, no_noise()), huge = one_group<float>(scaled, no_noise());
  small.forward(Mode::train);
  huge.forward(Mode::train);
  for (std::size_t i = 0; i < base.size(); ++i) {
    REQUIRE(std::isfinite(huge.out[i]));
    CHECK(huge.out[i] == Approx(small.out[i]).epsilon(1e-4).margin(1e-5));
  }
  CHECK(huge.context.lambda[0] == Approx(small.context.lambda[0]).epsilon(1e-4));
}

TEST_CASE("Double training: deviations up to 1e150 work, 1e155 overflows the variance (domain_error)", "[extremes]") {
  Harness<double> fine = one_group<double>({1e150, -1e150, 3e150, 0}, no_noise());
  REQUIRE_NOTHROW(fine.forward(Mode::train));
  for (double v : fine.out) CHECK(std::isfinite(v));
  Harness<double> over = one_group<double>({1e155, -1e155, 3e155, 0}, no_noise());
  CHECK_THROWS_AS(over.forward(Mode::train), std::domain_error);
}

TEMPLATE_TEST_CASE("Evaluation with running statistics at the type's limits: the power overflows to +-Inf, never NaN",
                   "[extremes]", float, double) {
  using T = TestType;
  const T max = std::numeric_limits<T>::max();
  for (bool simd : {true, false}) {
    Harness<T> layer = one_group<T>({0, 0, 0, 0}, no_noise());
    layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    layer.x = {max, -max, max / 1e10f, T(1)};
    // lambda = 1: y ~ h^(1 + sqrt(eps)) overflows for h near max.
    layer.forward(Mode::eval);
    INFO((simd ? "SIMD" : "scalar"));
    CHECK(layer.out[0] == std::numeric_limits<T>::infinity());
    CHECK(layer.out[1] == -std::numeric_limits<T>::infinity());
    CHECK(std::isfinite(layer.out[3]));
    // lambda = 0.5 keeps the right side below the overflow threshold; the left side's
    // exponent is 2 - lambda = 1.5, which overflows.
    layer.running_lambda = {T(0.5)};
    layer.forward(Mode::eval);
    CHECK(std::isfinite(layer.out[0]));
    CHECK(layer.out[1] == -std::numeric_limits<T>::infinity());
    CHECK(std::isfinite(layer.out[2]));
  }
}

TEST_CASE("Float denormal groups: the variance underflows to 0 and the output is beta", "[extremes]") {
  const double tiny = std::numeric_limits<float>::denorm_min();
  Harness<float> layer = one_group<float>({tiny, 3 * tiny, 0, -tiny, 7 * tiny}, no_noise());
  layer.forward(Mode::train);
  layer.backward();
  for (std::size_t i = 0; i < layer.x.size(); ++i) {
    CHECK(std::abs(layer.out[i] - layer.bias[0]) < 1e-6f);
    CHECK(std::isfinite(layer.grad_x[i]));
  }
}

// ---- lambda far from 1 --------------------------------------------------------------------

namespace {

// Without standardization h = x, and the Newton denominator g2 + sqrt(eps) of a constant
// group x = t is a smooth function of t that crosses 0: bisect to the pole, where the
// one-step lambda = 1 - g1 / (g2 + sqrt(eps)) is as far from 1 as double can take it.
struct Pole {
  double t_low, t_high;  // g2 + c changes sign between them (adjacent doubles, or nearly)
};

Pole find_pole(const Options& o, int n) {
  auto denominator = [&](double t) {
    Harness<double> layer = one_group<double>(std::vector<double>(static_cast<std::size_t>(n), t), o);
    layer.forward(Mode::eval);  // batch statistics (track_running_stats off): lambda from the group
    return layer.context.g2[0] + std::sqrt(o.eps);
  };
  double low = 0.5, high = 50;
  REQUIRE(denominator(low) > 0);
  REQUIRE(denominator(high) < 0);
  for (int i = 0; i < 200 && high - low > 0; ++i) {
    const double mid = 0.5 * (low + high);
    if (mid <= low || mid >= high) break;
    (denominator(mid) > 0 ? low : high) = mid;
  }
  return {low, high};
}

Options pole_options() {
  Options o = no_noise();
  o.standardize = false;
  o.track_running_stats = false;
  return o;
}

}  // namespace

TEST_CASE("Finite input can drive the one-step lambda arbitrarily far from 1, and the power then overflows", "[extremes]") {
  const Options o = pole_options();
  const Pole pole = find_pole(o, 4);
  INFO("pole between t = " << pole.t_low << " and " << pole.t_high);
  bool overflowed = false;
  for (double t : {pole.t_low, pole.t_high}) {
    Harness<double> layer = one_group<double>({t, t, t, t}, o);
    REQUIRE_NOTHROW(layer.forward(Mode::eval));
    const double lambda = layer.context.lambda[0];
    INFO("t = " << t << ": lambda " << lambda << ", out " << layer.out[0]);
    CHECK(std::abs(lambda) > 1e6);
    // h = t > 0 takes eta = lambda: lambda -> +huge overflows to +Inf, lambda -> -huge collapses to beta.
    if (lambda > 0) {
      CHECK(layer.out[0] == std::numeric_limits<double>::infinity());
      overflowed = true;
    } else {
      CHECK(std::abs(layer.out[0] - layer.bias[0]) < 1e-3);
    }
  }
  CHECK(overflowed);
}

TEST_CASE("Training refuses a lambda whose power overflows, before writing anything", "[extremes]") {
  // At the pole the one-step lambda is about +-1e14. Where the power would overflow
  // (|et| log1p(max |h|) beyond log(max T / 2M)) training reports a domain_error naming
  // the group and lambda, and leaves outputs and running statistics as they were; where
  // it collapses (lambda -> -huge on h > 0) the output is finite and training succeeds.
  Options o = pole_options();
  o.track_running_stats = true;
  const Pole pole = find_pole(pole_options(), 4);
  int refused = 0;
  for (double t : {pole.t_low, pole.t_high}) {
    Harness<double> layer = one_group<double>({t, t, t, t}, o);
    const auto running_lambda = layer.running_lambda, running_norm = layer.running_norm;
    std::fill(layer.out.begin(), layer.out.end(), -7.0);
    try {
      layer.forward(Mode::train);
    } catch (const std::domain_error& error) {
      ++refused;
      INFO(error.what());
      CHECK_THAT(error.what(), Catch::Contains("overflow") && Catch::Contains("group 0"));
      CHECK(layer.running_lambda == running_lambda);
      CHECK(layer.running_norm == running_norm);
      CHECK(layer.batches == 0);
      for (double v : layer.out) CHECK(v == -7.0);
      continue;
    }
    INFO("t = " << t << ": running_lambda " << layer.running_lambda[0] << ", running_norm " << layer.running_norm[0]);
    CHECK(std::isfinite(layer.running_lambda[0]));
    CHECK(std::isfinite(layer.running_norm[0]));
    for (double v : layer.out) CHECK(std::isfinite(v));
  }
  CHECK(refused == 1);
}

TEMPLATE_TEST_CASE("The overflow guard does not refuse groups whose transform is finite", "[extremes]", float, double) {
  // Without standardization, alpha = 3 pushes lambda to about 6.4 on this skewed group:
  // y = ((1 + x)^lambda - 1) / lambda stays near 1e4, so training must succeed and be finite.
  using T = TestType;
  Options o = pole_options();
  o.alpha = 3;
  std::vector<double> values;
  for (int i = 0; i < 64; ++i) values.push_back(std::pow(i / 64.0, 3) * 4 - 0.5);
  Harness<T> layer = one_group<T>(values, o);
  REQUIRE_NOTHROW(layer.forward(Mode::train));
  INFO("lambda " << layer.context.lambda[0]);
  CHECK(layer.context.lambda[0] > 5);
  for (T v : layer.out) CHECK(std::isfinite(v));
}

TEST_CASE("With standardization, alpha = 1 keeps lambda moderate even for extreme shapes of data", "[extremes]") {
  // The standardized group has mean 0 and variance ~1, which bounds g1 and keeps g2 well
  // above 0 (g2 >= 0.19 in a search over groups of 3 to 1024 values): lambda stays within
  // a few units of 1 and |h| <= sqrt(M - 1), so the power cannot overflow.
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> heavy(0.0, 3.0);
  for (int n : {3, 8, 64, 1024, 4096}) {
    std::vector<double> values;
    for (int i = 0; i < n; ++i) values.push_back(heavy(rng));
    Harness<double> layer = one_group<double>(values, no_noise());
    layer.forward(Mode::train);
    INFO(n << " values, lambda " << layer.context.lambda[0] << ", g2 " << layer.context.g2[0]);
    CHECK(std::abs(layer.context.lambda[0]) < 10);
    CHECK(layer.context.g2[0] > 0.1);
    for (double v : layer.out) CHECK(std::isfinite(v));
  }
}

// ---- accuracy of dy/dh on a strongly compressed side ------------------------------------

TEMPLATE_TEST_CASE("dy/dh keeps its relative accuracy where the exponent is strongly negative",
                   "[extremes]", float, double) {
  // grad_x of a batch form in evaluation is r gamma g (1 + |h|)^(et - 1) to a few ulp. psi_h was
  // (expm1(t) + 1) / (1 + |h|), t = et log1p(|h|), which has no correct digits for t below about
  // -16 (float) or -36 (double); it is now exp(t) / (1 + |h|).
  using T = TestType;
  const double t_target = sizeof(T) == 4 ? -17.0 : -37.0;
  for (bool simd : {true, false}) {
    INFO((simd ? "SIMD" : "scalar"));
    Harness<T> layer = one_group<T>({0, 0, 0, 0, 0, 0, 0, 0}, no_noise());
    layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    layer.running_lambda = {T(12.5)};  // h < 0 takes exponent 2 - 12.5 - sqrt(eps)
    const double c = std::sqrt(layer.config.options.eps), et = 2 - 12.5 - c;
    const double h = -std::expm1(t_target / et);  // log1p(|h|) = t / et
    const double r = 1 / std::sqrt(1 + layer.config.options.eps);
    std::fill(layer.x.begin(), layer.x.end(), T(h / r));
    layer.forward(Mode::eval);
    layer.backward();
    for (std::size_t i = 0; i < layer.x.size(); ++i) {
      const double hi = double(layer.x[i]) * r, a = std::abs(hi);
      const double want = r * 1.5 * double(layer.grad_out[i]) * std::exp(et * std::log1p(a)) / (1 + a);
      INFO("h " << hi << ": grad_x " << layer.grad_x[i] << ", want " << want);
      CHECK(double(layer.grad_x[i]) == Approx(want).epsilon(1e-3));
    }
  }
}

// ---- an exponent so small that 1 / et overflows ------------------------------------------

TEMPLATE_TEST_CASE("eps = 0 and a denormal running lambda: evaluation is the log side, finite", "[extremes]", float,
                   double) {
  // et = lambda is denormal, so gamma / et overflows T; the side takes y = L instead, which
  // is expm1(et L) / et to far below T's precision (docs/reliability.md, finding 6).
  using T = TestType;
  Options o = no_noise();
  o.eps = 0;
  for (bool simd : {true, false}) {
    INFO((simd ? "SIMD" : "scalar"));
    Harness<T> layer = one_group<T>({0.0, 3.0, 7.0, 120.0, 1e4}, o);
    layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    layer.running_mean = {T(0)};
    layer.running_var = {T(1)};
    layer.running_lambda = {std::numeric_limits<T>::denorm_min()};
    layer.forward(Mode::eval);
    for (std::size_t i = 0; i < layer.x.size(); ++i) {
      const double want = 1.5 * std::log1p(double(layer.x[i])) - 0.25;
      INFO("x " << layer.x[i]);
      CHECK(double(layer.out[i]) == Approx(want).epsilon(sizeof(T) == 4 ? 1e-6 : 1e-14));
    }
  }
}

// ---- float data far from zero ----------------------------------------------------------

TEST_CASE("Float groups far from zero: the corrected mean keeps h centred on both paths", "[extremes]") {
  // x = -1e6 + a skewed sample: float's partial sums of x lose units of the spread, so a
  // plain two-pass mean is off and h is not centred (the one-step lambda then ran to 451 on
  // the scalar path and overflowed: a fuzzer finding). The deviations' own sum corrects it.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  std::vector<double> values;
  for (int i = 0; i < 60; ++i) values.push_back(-1e6 + std::exp(2.5 * normal(rng)));
  for (bool simd : {true, false}) {
    INFO((simd ? "SIMD" : "scalar"));
    Harness<float> layer = one_group<float>(values, no_noise());
    layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
    REQUIRE_NOTHROW(layer.forward(Mode::train));
    double sum_h = 0;
    for (float x : layer.x) sum_h += (double(x) - layer.context.mean[0]) * layer.context.rstd[0];
    CHECK(std::abs(sum_h / 60) < 1e-4);
    const auto want = reference_out(layer, Mode::train);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(double(layer.out[i]) == Approx(want[i]).margin(2e-3));
  }
}

TEMPLATE_TEST_CASE("Constant channels far from zero: variance 0 and the same result on both paths", "[extremes]", float,
                   double) {
  // Copies of one large value per channel: the lane sums round differently from a
  // sequential sum, so the SIMD path's first mean could miss the value by an ulp, and beyond
  // sqrt(max(T)) the squared deviations overflowed (rstd 0 instead of 1/sqrt(eps): a fuzzer
  // finding, BatchNormalNorm1d (57, 6) in double at 7e228). The deviations' sum now
  // recentres the pass on the corrected mean.
  using T = TestType;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> mantissa(1.0, 2.0);
  for (int trial = 0; trial < 40; ++trial) {
    const index_t rows = 7 + 25 * (trial % 3) + trial, channels = 6;
    // Half the trials as the finding: evaluation without running statistics (batch statistics).
    const bool track = trial % 2 == 0;
    Options options = no_noise();
    options.track_running_stats = track;
    std::vector<double> values;
    // Far beyond sqrt(max(T)), so an ulp of them squared overflows.
    for (index_t c = 0; c < channels; ++c)
      values.push_back(double(T(mantissa(rng) * (sizeof(T) == 4 ? 0x1p110 : 0x1p760))));
    std::vector<std::vector<double>> grads;
    for (bool simd : {true, false}) {
      INFO(rows << " rows, " << (simd ? "SIMD" : "scalar"));
      Harness<T> layer(LayerConfig::batch_normal_norm_1d(channels, options), Shape{rows, channels});
      for (std::size_t i = 0; i < layer.x.size(); ++i) {
        layer.x[i] = T(values[i % static_cast<std::size_t>(channels)]);
        layer.grad_out[i] = T(std::sin(1.0 + double(i)));
      }
      layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      REQUIRE_NOTHROW(layer.forward(track ? Mode::train : Mode::eval));
      for (index_t c = 0; c < channels; ++c) {
        CHECK(layer.context.rstd[static_cast<std::size_t>(c)] == Approx(1.0 / std::sqrt(layer.config.options.eps)));
        CHECK(layer.context.lambda[static_cast<std::size_t>(c)] == 1.0);
      }
      REQUIRE_NOTHROW(layer.backward());
      for (T y : layer.out) CHECK(y == T(0));
      grads.emplace_back(layer.grad_x.begin(), layer.grad_x.end());
    }
    for (std::size_t i = 0; i < grads[0].size(); ++i) CHECK(grads[0][i] == Approx(grads[1][i]).epsilon(sizeof(T) == 4 ? 1e-4 : 1e-9).margin(1e-12));
  }
}
