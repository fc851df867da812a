#pragma once
// Finite-difference gradient checks in double: loss = sum(out * grad_out), central
// differences of every input, weight and bias against what backward computes.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "harness.hpp"

namespace normnorm::test {

// loss = sum(out * grad_out): its gradient is what backward computes.
inline std::vector<double> outputs_of(Harness<double>& layer, Mode mode) {
  // Training calls advance the running statistics: restore them so every probe sees the same state.
  const auto mean = layer.running_mean, var = layer.running_var, lambda = layer.running_lambda, norm = layer.running_norm;
  const auto batches = layer.batches;
  layer.forward(mode);
  layer.running_mean = mean, layer.running_var = var, layer.running_lambda = lambda, layer.running_norm = norm;
  layer.batches = batches;
  return layer.out;
}

// Central difference of the loss. The outputs are differenced before they are
// summed, so large outputs that do not depend on `value` add no rounding noise.
inline double numeric_derivative(Harness<double>& layer, Mode mode, double& value) {
  const double saved = value, step = 1e-6 * std::max(1.0, std::abs(saved));
  value = saved + step;
  const auto up = outputs_of(layer, mode);
  value = saved - step;
  const auto down = outputs_of(layer, mode);
  value = saved;
  double derivative = 0;
  for (std::size_t i = 0; i < up.size(); ++i) derivative += (up[i] - down[i]) * layer.grad_out[i];
  return derivative / (2 * step);
}

inline void require_close(double analytic, double numeric, const std::string& what) {
  INFO(what << ": analytic " << analytic << ", numeric " << numeric);
  REQUIRE(std::abs(analytic - numeric) <= 2e-6 * std::max(1.0, std::abs(numeric)));
}

// Checks grad_x, grad_weight and grad_bias of `layer` (input already set) in `mode`.
inline void gradcheck(Harness<double>& layer, Mode mode) {
  if (mode == Mode::eval && layer.config.has_running_stats()) {
    // Evaluate against running statistics that a training call produced.
    const auto x = layer.x;
    for (auto& v : layer.x) v = v * 1.3 + 0.2;
    layer.forward(Mode::train);
    layer.x = x;
  }
  outputs_of(layer, mode);
  layer.backward();
  const auto grad_x = layer.grad_x, grad_weight = layer.grad_weight, grad_bias = layer.grad_bias;
  for (std::size_t i = 0; i < layer.x.size(); ++i)
    require_close(grad_x[i], numeric_derivative(layer, mode, layer.x[i]), "grad_x[" + std::to_string(i) + "]");
  if (!layer.config.options.affine) return;
  for (std::size_t i = 0; i < layer.weight.size(); ++i) {
    require_close(grad_weight[i], numeric_derivative(layer, mode, layer.weight[i]), "grad_weight[" + std::to_string(i) + "]");
    require_close(grad_bias[i], numeric_derivative(layer, mode, layer.bias[i]), "grad_bias[" + std::to_string(i) + "]");
  }
}

}  // namespace normnorm::test
