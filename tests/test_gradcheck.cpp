// Finite-difference gradient checks in double for every form x order x affine x
// mode x standardize x power_transform, plus the groups the spec singles out:
// groups of 2 and 3 values, ties, and values exactly at the group mean (where
// normnorm uses the true derivative). Float backward is checked against double.

#include <catch2/catch.hpp>

#include <functional>

#include "gradcheck.hpp"
#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;


TEST_CASE("finite-difference gradients: every form, order, affine, mode and switch", "[gradcheck]") {
  int checked = 0;
  for (int order : {1, 2})
    for (bool affine : {true, false})
      for (bool standardize : {true, false})
        for (bool power_transform : {true, false})
          for (Mode mode : {Mode::train, Mode::eval}) {
            Options o;
            o.order = order, o.affine = affine, o.standardize = standardize, o.power_transform = power_transform;
            o.alpha = order == 1 ? 0.5 : 1.0;
            o.noise_train = 0;  // noise has no gradient path to x (norm is a constant), tested below for weight
            for (const FormCase& form_case : form_cases(o, true)) {
              INFO(form_case.config.name() << " order " << order << " affine " << affine << " standardize "
                   << standardize << " power_transform " << power_transform << " "
                   << (mode == Mode::train ? "train" : "eval"));
              Harness<double> layer(form_case.config, form_case.shape);
              layer.randomize(100 + static_cast<unsigned>(checked), 0.5);
              if (!standardize)  // keep |h| moderate so the power stays well conditioned
                for (auto& v : layer.x) v = v - 1.0;
              gradcheck(layer, mode);
              ++checked;
            }
          }
  CHECK(checked == 2 * 2 * 2 * 2 * 2 * 5);
}

TEST_CASE("finite-difference gradients with training noise (grad_weight sees the replayed draws)", "[gradcheck]") {
  for (const FormCase& form_case : form_cases(Options{}, false)) {
    INFO(form_case.config.name());
    Harness<double> layer(form_case.config, form_case.shape);
    layer.randomize(7);
    layer.noise = NoiseSource<double>::philox(1234, 5);
    outputs_of(layer, Mode::train);
    layer.backward();
    for (std::size_t i = 0; i < layer.weight.size(); ++i)
      require_close(layer.grad_weight[i], numeric_derivative(layer, Mode::train, layer.weight[i]),
                    "grad_weight[" + std::to_string(i) + "]");
  }
}

TEST_CASE("finite-difference gradients on the groups the spec singles out", "[gradcheck]") {
  Options o = default_options(Form::batch_1d);
  o.noise_train = 0;
  struct Group {
    const char* name;
    std::vector<double> values;  // one channel's values over the batch
  };
  const std::vector<Group> groups = {
      {"two values", {0.3, 1.7}},
      {"three values, middle exactly at the mean", {-1.0, 0.0, 1.0}},
      {"three values, skewed", {0.1, 0.2, 3.0}},
      {"ties", {1.0, 1.0, 2.0, 2.0, 2.0, 5.0}},
      {"all equal but one", {2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 9.0}},
      {"two values exactly at the mean", {-2.0, 0.0, 0.0, 2.0}},
  };
  for (int order : {1, 2})
    for (const Group& group : groups) {
      INFO(group.name << ", order " << order);
      o.order = order;
      const auto n = static_cast<index_t>(group.values.size());
      Harness<double> layer(LayerConfig::batch_normal_norm_1d(2, o), Shape{n, 2});
      layer.randomize(9);
      for (index_t i = 0; i < n; ++i) {
        layer.x[static_cast<std::size_t>(i * 2)] = group.values[static_cast<std::size_t>(i)];
        layer.x[static_cast<std::size_t>(i * 2 + 1)] = 0.5 * group.values[static_cast<std::size_t>(i)] + 0.1 * double(i * i);
      }
      gradcheck(layer, Mode::train);
    }
}

TEMPLATE_TEST_CASE("float backward agrees with double backward", "[gradcheck]", float) {
  for (const FormCase& form_case : form_cases(Options{}, false)) {
    INFO(form_case.config.name());
    Harness<double> reference(form_case.config, form_case.shape);
    Harness<float> layer(form_case.config, form_case.shape);
    reference.randomize(21);
    layer.randomize(21);
    reference.noise = NoiseSource<double>::philox(3, 1);
    layer.noise = NoiseSource<float>::philox(3, 1);
    reference.forward(Mode::train);
    layer.forward(Mode::train);
    reference.backward();
    layer.backward();
    double scale = 0;
    for (double g : reference.grad_x) scale = std::max(scale, std::abs(g));
    for (std::size_t i = 0; i < layer.grad_x.size(); ++i) {
      INFO("grad_x[" << i << "]");
      CHECK(std::abs(layer.grad_x[i] - reference.grad_x[i]) <= 1e-4 * scale);
    }
    for (std::size_t i = 0; i < layer.grad_weight.size(); ++i) {
      CHECK(layer.grad_weight[i] == Approx(reference.grad_weight[i]).epsilon(1e-4).margin(1e-4));
      CHECK(layer.grad_bias[i] == Approx(reference.grad_bias[i]).epsilon(1e-4).margin(1e-4));
    }
  }
}
