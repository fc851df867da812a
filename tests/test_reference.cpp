// Every option combination of every form, in both dtypes and both execution
// paths, against the long-double reference: outputs, lambda, running statistics
// over a sequence of training and evaluation calls.

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

template <class T>
double tolerance() { return sizeof(T) == 8 ? 1e-10 : 3e-4; }

template <class T>
void check_close(const std::vector<T>& got, const std::vector<double>& want, const char* what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "]: got " << got[i] << ", want " << want[i]);
    REQUIRE(std::abs(double(got[i]) - want[i]) <= tolerance<T>() * (1.0 + std::abs(want[i])));
  }
}

template <class T>
void replay_against_reference(const FormCase& form_case, bool simd) {
  Harness<T> layer(form_case.config, form_case.shape);
  layer.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
  ReferenceRunning running(static_cast<std::size_t>(form_case.config.num_running()));
  std::vector<double> weight, bias;
  const Mode modes[] = {Mode::train, Mode::train, Mode::eval, Mode::train, Mode::eval};
  unsigned seed = 11;
  for (Mode mode : modes) {
    layer.randomize(seed++);
    weight.assign(layer.weight.begin(), layer.weight.end());
    bias.assign(layer.bias.begin(), layer.bias.end());
    const std::vector<double> x(layer.x.begin(), layer.x.end());
    const auto want = reference_forward(layer.config, mode, x, layer.shape, weight, bias, &running, {});
    layer.forward(mode);
    check_close(layer.out, want.out, "output");
    if (mode == Mode::train || !layer.config.has_running_stats()) check_close(std::vector<T>(layer.context.lambda.begin(), layer.context.lambda.end()), want.lambda, "lambda");
    if (layer.config.has_running_stats()) {
      check_close(layer.running_mean, running.mean, "running_mean");
      check_close(layer.running_var, running.var, "running_var");
      check_close(layer.running_lambda, running.lambda, "running_lambda");
      check_close(layer.running_norm, running.norm, "running_norm");
      CHECK(layer.batches == running.batches);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("every option combination matches the reference", "[reference]", float, double) {
  int combinations = 0;
  for (int order : {1, 2})
    for (double alpha : {1.0, 0.5})
      for (bool affine : {true, false})
        for (bool standardize : {true, false})
          for (bool power_transform : {true, false})
            for (std::optional<double> momentum : {std::optional<double>(0.1), std::optional<double>()})
              for (bool track : {true, false}) {
                Options o;
                o.order = order, o.alpha = alpha, o.affine = affine, o.standardize = standardize;
                o.power_transform = power_transform, o.momentum = momentum, o.track_running_stats = track;
                o.noise_train = 0;
                for (const FormCase& form_case : form_cases(o, true))
                  for (bool simd : {true, false}) {
                    INFO(form_case.config.name() << " order " << order << " alpha " << alpha << " affine " << affine
                         << " standardize " << standardize << " power_transform " << power_transform << " momentum "
                         << (momentum ? *momentum : -1) << " track " << track << " simd " << simd);
                    replay_against_reference<TestType>(form_case, simd);
                    ++combinations;
                  }
              }
  CHECK(combinations == 2 * 2 * 2 * 2 * 2 * 2 * 2 * 5 * 2);
}

TEST_CASE("power_transform off is plain batch and layer normalization", "[reference]") {
  Options o = default_options(Form::batch_2d);
  o.power_transform = false;
  Harness<double> bn(LayerConfig::batch_normal_norm_2d(2, o), Shape{3, 2, 2, 2});
  bn.randomize(3);
  bn.forward(Mode::train);
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int n = 0; n < 3; ++n)
      for (int s = 0; s < 4; ++s) mean += bn.x[(n * 2 + c) * 4 + s] / 12;
    for (int n = 0; n < 3; ++n)
      for (int s = 0; s < 4; ++s) var += std::pow(bn.x[(n * 2 + c) * 4 + s] - mean, 2) / 12;
    for (int n = 0; n < 3; ++n)
      for (int s = 0; s < 4; ++s) {
        const int i = (n * 2 + c) * 4 + s;
        CHECK(bn.out[i] == Approx((bn.x[i] - mean) / std::sqrt(var + 1e-5) * bn.weight[c] + bn.bias[c]).epsilon(1e-12));
      }
    CHECK(bn.running_mean[c] == Approx(0.1 * mean).epsilon(1e-12));
    CHECK(bn.running_var[c] == Approx(0.9 + 0.1 * var * 12 / 11).epsilon(1e-12));
    CHECK(bn.running_lambda[c] == 1.0);  // untouched: there is no lambda
  }

  Options lo = default_options(Form::layer);
  lo.power_transform = false;
  Harness<double> ln(LayerConfig::layer_normal_norm(Shape{6}, lo), Shape{4, 6});
  ln.randomize(4);
  ln.noise = NoiseSource<double>::philox(1, 0);  // must be ignored: no noise without the power transform
  ln.forward(Mode::train);
  for (int r = 0; r < 4; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 6; ++j) mean += ln.x[r * 6 + j] / 6;
    for (int j = 0; j < 6; ++j) var += std::pow(ln.x[r * 6 + j] - mean, 2) / 6;
    for (int j = 0; j < 6; ++j)
      CHECK(ln.out[r * 6 + j] ==
            Approx((ln.x[r * 6 + j] - mean) / std::sqrt(var + 1e-5) * ln.weight[j] + ln.bias[j]).epsilon(1e-12));
  }
}

TEST_CASE("track_running_stats off: batch forms use the batch's statistics in evaluation", "[reference]") {
  Options o = default_options(Form::batch_1d);
  o.track_running_stats = false;
  o.noise_train = 0;
  Harness<double> layer(LayerConfig::batch_normal_norm_1d(3, o), Shape{10, 3});
  layer.randomize(5);
  layer.forward(Mode::train);
  const auto train_out = layer.out;
  layer.forward(Mode::eval);
  for (std::size_t i = 0; i < train_out.size(); ++i) CHECK(layer.out[i] == Approx(train_out[i]).epsilon(1e-14));
  CHECK(layer.batches == 0);
}
