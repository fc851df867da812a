// The lambda estimators on every form (issue 7; docs/lambda-search.md):
// newton_step (the paper's, the default), gradient_step (= order 1), newton(k)
// and exact. Finite-difference gradients through newton(k) and through the
// implicit-function gradient of exact; exact against scipy's
// yeojohnson_normmax at the layer level; SIMD against scalar; validation.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "harness.hpp"
#include "lambda_reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

struct EstimatorCase {
  const char* name;
  LambdaEstimator estimator;
  int iterations;
};

const std::vector<EstimatorCase>& estimator_cases() {
  static const std::vector<EstimatorCase> cases = {
      {"gradient_step", LambdaEstimator::gradient_step, 1},
      {"newton(1)", LambdaEstimator::newton, 1},
      {"newton(3)", LambdaEstimator::newton, 3},
      {"exact", LambdaEstimator::exact, 1},
  };
  return cases;
}

Options with_estimator(Options o, const EstimatorCase& e) {
  o.estimator = e.estimator;
  o.newton_iterations = e.iterations;
  if (e.estimator == LambdaEstimator::gradient_step) o.alpha = 0.5;
  return o;
}

// One channel of a batch-1d layer holding `values` (and a second, milder channel).
template <class T>
Harness<T> one_channel(const std::vector<double>& values, const Options& o) {
  const auto n = static_cast<index_t>(values.size());
  Harness<T> layer(LayerConfig::batch_normal_norm_1d(2, o), Shape{n, 2});
  for (index_t i = 0; i < n; ++i) {
    layer.x[static_cast<std::size_t>(2 * i)] = T(values[static_cast<std::size_t>(i)]);
    layer.x[static_cast<std::size_t>(2 * i + 1)] = T(0.3 * std::sin(double(i)) + 0.01 * double(i));
  }
  return layer;
}

// Randomizes both layers alike, then runs a training forward and backward on each
// (the callers have set their execution and noise).
template <class T>
void train_both(Harness<T>& a, Harness<T>& b, unsigned seed, double skew) {
  for (Harness<T>* layer : {&a, &b}) {
    layer->randomize(seed, skew);
    layer->forward(Mode::train);
    layer->backward();
  }
}

}  // namespace

TEST_CASE("estimators: finite-difference gradients on every form, mode and standardize switch", "[estimators][gradcheck]") {
  int checked = 0;
  for (const EstimatorCase& e : estimator_cases())
    for (bool standardize : {true, false})
      for (Mode mode : {Mode::train, Mode::eval}) {
        Options o;
        o.standardize = standardize;
        o.noise_train = 0;
        for (const FormCase& form_case : form_cases(with_estimator(o, e), true)) {
          INFO(form_case.config.name() << " " << e.name << " standardize " << standardize << " "
               << (mode == Mode::train ? "train" : "eval"));
          Harness<double> layer(form_case.config, form_case.shape);
          layer.randomize(300 + static_cast<unsigned>(checked), 0.5);
          if (!standardize)
            for (auto& v : layer.x) v = v - 1.0;
          gradcheck(layer, mode);
          ++checked;
        }
      }
  CHECK(checked == static_cast<int>(estimator_cases().size()) * 2 * 2 * 5);
}

TEST_CASE("estimators: the search moves lambda, and newton(k) approaches exact as k grows", "[estimators]") {
  Options o = default_options(Form::batch_1d);
  o.noise_train = 0;
  const std::vector<double> skewed = {0.1, 0.2, 0.2, 0.3, 0.5, 0.8, 1.3, 2.1, 3.4, 5.5, 8.9, 14.4};
  double previous_gap = 1e9;
  auto lambda_of = [&](LambdaEstimator estimator, int k) {
    Options oe = o;
    oe.estimator = estimator;
    oe.newton_iterations = k;
    Harness<double> layer = one_channel<double>(skewed, oe);
    layer.forward(Mode::train);
    return layer.context.lambda[0];
  };
  const double exact = lambda_of(LambdaEstimator::exact, 1);
  const double one_step = lambda_of(LambdaEstimator::newton_step, 1);
  INFO("exact " << exact << ", the paper's one step " << one_step);
  CHECK(std::abs(exact - one_step) > 0.05);  // the two estimates differ on skewed data
  for (int k : {1, 2, 4, 8}) {
    const double gap = std::abs(lambda_of(LambdaEstimator::newton, k) - exact);
    INFO("newton(" << k << "): |lambda - exact| = " << gap);
    CHECK(gap <= previous_gap);
    previous_gap = gap;
  }
  CHECK(previous_gap < 1e-8);
}

TEST_CASE("estimators: gradient_step is the paper's order 1, bit for bit", "[estimators]") {
  for (const FormCase& order_one : form_cases([] { Options o; o.order = 1; o.alpha = 0.5; o.noise_train = 0; return o; }(), true)) {
    INFO(order_one.config.name());
    LayerConfig config = order_one.config;
    config.options.order = 2;
    config.options.estimator = LambdaEstimator::gradient_step;
    Harness<double> a(order_one.config, order_one.shape), b(config, order_one.shape);
    a.randomize(5);
    b.randomize(5);
    a.forward(Mode::train);
    b.forward(Mode::train);
    a.backward();
    b.backward();
    CHECK(a.out == b.out);
    CHECK(a.grad_x == b.grad_x);
    CHECK(a.context.lambda == b.context.lambda);
  }
}

TEMPLATE_TEST_CASE("estimators: exact on a layer matches scipy's yeojohnson_normmax", "[estimators]", float, double) {
  // The script standardized each sample as the layer does, h = (x - mean) / sqrt(v + 1e-5),
  // so the stored h has variance v_h = v / (v + 1e-5) < 1. Feeding x = c h with
  // c^2 = 1e-5 / (1 - v_h) makes the layer's own standardization give back h exactly
  // (up to rounding), so its exact lambda must be scipy's.
  using T = TestType;
  Options o = default_options(Form::batch_1d);
  o.noise_train = 0;
  o.estimator = LambdaEstimator::exact;
  int compared = 0;
  for (const RefSample& sample : reference_samples()) {
    if (!(sample.scipy > -8 && sample.scipy < 10)) continue;  // outside the documented bracket
    INFO(sample.name << ": scipy " << sample.scipy);
    double mean = 0, variance = 0;
    for (double h : sample.h) mean += h / double(sample.h.size());
    for (double h : sample.h) variance += (h - mean) * (h - mean) / double(sample.h.size());
    REQUIRE(variance < 1);
    const double c = std::sqrt(o.eps / (1 - variance));
    std::vector<double> x;
    for (double h : sample.h) x.push_back(c * h);
    Harness<T> layer = one_channel<T>(x, o);
    layer.forward(Mode::train);
    const double tolerance = sizeof(T) == 4 ? 2e-3 : 1e-6;
    CHECK(std::abs(layer.context.lambda[0] - sample.scipy) <= tolerance * std::max(1.0, std::abs(sample.scipy)));
    ++compared;
  }
  CHECK(compared >= 20);
}

TEMPLATE_TEST_CASE("estimators: SIMD and scalar paths agree", "[estimators][simd]", float, double) {
  using T = TestType;
  const double rel = sizeof(T) == 4 ? 2e-4 : 1e-9;
  for (const EstimatorCase& e : estimator_cases()) {
    Options o;
    o.noise_train = 0;
    for (const FormCase& form_case : form_cases(with_estimator(o, e), true)) {
      INFO(form_case.config.name() << " " << e.name);
      Harness<T> simd(form_case.config, form_case.shape), scalar(form_case.config, form_case.shape);
      scalar.execution.simd_path = SimdPath::scalar;
      train_both(simd, scalar, 17, 0.5);
      for (std::size_t g = 0; g < simd.context.lambda.size(); ++g)
        CHECK(simd.context.lambda[g] == Approx(scalar.context.lambda[g]).epsilon(rel).margin(rel));
      for (std::size_t i = 0; i < simd.out.size(); ++i) {
        CHECK(double(simd.out[i]) == Approx(double(scalar.out[i])).epsilon(rel).margin(rel));
        CHECK(double(simd.grad_x[i]) == Approx(double(scalar.grad_x[i])).epsilon(10 * rel).margin(10 * rel));
      }
    }
  }
}

TEST_CASE("estimators: nonsense settings are rejected before anything is written", "[estimators][validation]") {
  for (int k : {0, 17, -1}) {
    Options o = default_options(Form::batch_1d);
    o.estimator = LambdaEstimator::newton;
    o.newton_iterations = k;
    Harness<double> layer = one_channel<double>({1, 2, 3, 4}, o);
    const auto running = layer.running_lambda;
    try {
      layer.forward(Mode::train);
      FAIL("no exception for newton_iterations " << k);
    } catch (const std::invalid_argument& error) {
      CHECK_THAT(error.what(), Catch::Contains("newton_iterations must be in [1, 16]"));
    }
    CHECK(layer.running_lambda == running);
  }
  Options o = default_options(Form::batch_1d);
  o.estimator = static_cast<LambdaEstimator>(9);
  Harness<double> layer = one_channel<double>({1, 2, 3, 4}, o);
  CHECK_THROWS_WITH(layer.forward(Mode::train), Catch::Contains("estimator must be"));
}

TEST_CASE("estimators: a training group with NaN is still refused before the search, nothing written", "[estimators]") {
  for (const EstimatorCase& e : estimator_cases()) {
    INFO(e.name);
    Options o = with_estimator(default_options(Form::batch_1d), e);
    o.noise_train = 0;
    Harness<double> layer = one_channel<double>({1, 2, std::nan(""), 4}, o);
    const auto running = layer.running_lambda;
    CHECK_THROWS_AS(layer.forward(Mode::train), std::domain_error);
    CHECK(layer.running_lambda == running);
    CHECK(layer.batches == 0);
  }
}

TEST_CASE("estimators: results are bit-identical on a thread pool", "[estimators][threads]") {
  Eigen::ThreadPool pool(2);
  Eigen::ThreadPoolDevice device(&pool, 2);
  for (const EstimatorCase& e : estimator_cases()) {
    Options o;
    o.noise_train = 0.4;
    for (const FormCase& form_case : form_cases(with_estimator(o, e), true)) {
      INFO(form_case.config.name() << " " << e.name);
      Harness<float> serial(form_case.config, form_case.shape), threaded(form_case.config, form_case.shape);
      serial.noise = NoiseSource<float>::philox(5, 2);
      threaded.noise = NoiseSource<float>::philox(5, 2);
      threaded.execution.device = &device;
      train_both(serial, threaded, 23, 0.6);
      CHECK(serial.out == threaded.out);
      CHECK(serial.grad_x == threaded.grad_x);
      CHECK(serial.grad_weight == threaded.grad_weight);
      CHECK(serial.context.lambda == threaded.context.lambda);
      CHECK(serial.running_lambda == threaded.running_lambda);
    }
  }
}
