#pragma once
// One SIMD path against the scalar reference path on random configurations of
// every form, with shapes that leave tails after every SIMD width: outputs,
// gradients and running statistics, training (with noise) and evaluation.
// Used for the native path (test_simd_paths.cpp) and for every runtime
// dispatch target (dispatch/test_dispatch.cpp). The built-in noise may round
// differently on another instruction set (its float Box-Muller under FMA: a few
// float ulps, engine/dispatch.hpp), so where it enters (training output and
// grad_weight) the tolerance is at least float's.

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "harness.hpp"

namespace normnorm::test {

template <class T>
void compare_path_with_scalar(SimdPath path, int trials = 60) {
  std::mt19937 rng(2024);
  auto pick = [&](int n) { return static_cast<index_t>(std::uniform_int_distribution<int>(1, n)(rng)); };
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-5;
  for (int trial = 0; trial < trials; ++trial) {
    const int form = trial % 5;
    Options o = default_options(static_cast<Form>(form));
    o.order = 1 + trial % 2;
    o.standardize = trial % 7 != 3;
    o.affine = trial % 3 != 1;
    if (trial % 11 == 5) o.estimator = LambdaEstimator::newton;
    if (trial % 4 == 2) o.evaluation_map = EvaluationMap::polynomial;
    const index_t n = 1 + pick(5), c = 2 * pick(3), h = pick(9), w = pick(11);
    FormCase fc{LayerConfig::batch_normal_norm_2d(c, o), Shape{n, c, h, w}};
    if (form == 0) fc = {LayerConfig::batch_normal_norm_1d(c, o), Shape{n + 7, c}};
    if (form == 2) fc = {LayerConfig::layer_normal_norm(Shape{h, w}, o), Shape{n, h, w}};
    if (form == 3) fc = {LayerConfig::group_normal_norm(2, c, o), Shape{n, c, h, w}};
    if (form == 4) fc = {LayerConfig::instance_normal_norm_2d(c, o), Shape{n, c, h, w + 1}};
    INFO("path " << to_string(path) << " (" << resolved_simd_arch(path) << "), trial " << trial << ": "
                 << fc.config.name() << " " << fc.shape.to_string());
    Harness<T> simd(fc.config, fc.shape), scalar(fc.config, fc.shape);
    simd.randomize(static_cast<unsigned>(trial));
    scalar.randomize(static_cast<unsigned>(trial));
    simd.execution.simd_path = path;
    scalar.execution.simd_path = SimdPath::scalar;
    for (auto* layer : {&simd, &scalar}) layer->noise = NoiseSource<T>::philox(99, static_cast<std::uint64_t>(trial));
    for (Mode mode : {Mode::train, Mode::eval}) {
      simd.forward(mode);
      scalar.forward(mode);
      simd.backward();
      scalar.backward();
      const double noise_tol = mode == Mode::train ? std::max(tol, 2e-6) : tol;
      auto compare = [&](const std::vector<T>& a, const std::vector<T>& b, const char* what, double tol) {
        double scale = 1;
        for (auto v : b) scale = std::max(scale, std::abs(double(v)));
        for (std::size_t i = 0; i < a.size(); ++i) {
          INFO(what << "[" << i << "] " << a[i] << " vs " << b[i]);
          REQUIRE(std::abs(double(a[i]) - double(b[i])) <= tol * scale);
        }
      };
      compare(simd.out, scalar.out, "output", noise_tol);
      compare(simd.grad_x, scalar.grad_x, "grad_x", tol);
      compare(simd.grad_weight, scalar.grad_weight, "grad_weight", noise_tol);
      compare(simd.grad_bias, scalar.grad_bias, "grad_bias", tol);
      compare(simd.running_lambda, scalar.running_lambda, "running_lambda", tol);
    }
  }
}

}  // namespace normnorm::test
