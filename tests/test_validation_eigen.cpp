// What bad input gets (spec section 6): every public entry point rejects bad
// arguments with std::invalid_argument (non-finite training input with
// std::domain_error), naming the layer and the offending argument, before any
// caller-visible state changes; "unchanged" is checked bit for bit
// (validation_support.hpp).
// This file: the Eigen functors.

#include <catch2/catch.hpp>

#include "validation_support.hpp"

// ---- Eigen functors ----------------------------------------------------------------------

TEMPLATE_TEST_CASE("Eigen functors reject TensorMaps of different shapes", "[validation]", float, double) {
  using T = TestType;
  namespace ne = nn::eigen;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  Buffers<T> b(config, Shape{2, 3, 4, 5});
  const ne::AffineMaps<T> affine(ne::ConstVectorMap<T>(b.weight.data(), 3), ne::ConstVectorMap<T>(b.bias.data(), 3));
  ne::ConstTensorMap<T, 4> input(b.input.data(), 2, 3, 4, 5);

  SECTION("forward: output of another shape") {
    ne::TensorMap<T, 4> output(b.output.data(), 2, 3, 5, 4);
    const auto before = snapshot(b);
    const ne::Forward<T> forward{config};
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(mode_name(mode));
      auto call = [&] {
        forward(mode, input, output, affine, b.args().running, nn::NoiseSource<T>::philox(1, 0), b.context);
      };
      NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "output shape (2, 3, 5, 4)", "(2, 3, 4, 5)");
      CHECK(changes(b, before) == "");
    }
    // The same call with a matching output works.
    ne::TensorMap<T, 4> good(b.output.data(), 2, 3, 4, 5);
    CHECK_NOTHROW(
        forward(Mode::train, input, good, affine, b.args().running, nn::NoiseSource<T>::philox(1, 0), b.context));
  }

  SECTION("backward: grad_input or grad_output of another shape") {
    b.forward(Mode::train);
    Gradients<T> g(3);
    const ne::Backward<T> backward{config};
    const ne::AffineGradMaps<T> grads(ne::VectorMap<T>(g.grad_weight.data(), 3),
                                      ne::VectorMap<T>(g.grad_bias.data(), 3));
    ne::ConstTensorMap<T, 4> grad_output(g.grad_output.data(), 2, 3, 4, 5);
    ne::ConstTensorMap<T, 4> wrong_grad_output(g.grad_output.data(), 2, 3, 2, 10);
    ne::TensorMap<T, 4> grad_input(g.grad_input.data(), 2, 3, 4, 5);
    ne::TensorMap<T, 4> wrong_grad_input(g.grad_input.data(), 1, 3, 4, 10);
    auto call = [&] { backward(input, grad_output, affine, wrong_grad_input, grads, b.context); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "grad_input (1, 3, 4, 10)");
    CHECK(g.untouched());
    auto call2 = [&] { backward(input, wrong_grad_output, affine, grad_input, grads, b.context); };
    NN_CHECK_THROWS(std::invalid_argument, call2, "BatchNormalNorm2d", "grad_output (2, 3, 2, 10)");
    CHECK(g.untouched());
    CHECK_NOTHROW(backward(input, grad_output, affine, grad_input, grads, b.context));
    CHECK_FALSE(g.untouched());
  }

  SECTION("module Eigen overloads") {
    nn::BatchNormalNorm2d<T> module(3);
    Eigen::Tensor<T, 4, Eigen::RowMajor> x(2, 3, 4, 5), wrong(2, 3, 5, 4);
    std::copy(b.input.begin(), b.input.begin() + x.size(), x.data());
    wrong.setConstant(T(0.5));
    Eigen::Tensor<T, 4, Eigen::RowMajor> y = module.forward(x);
    const auto before = state_of(module);
    auto call = [&] { (void)module.backward(x, wrong); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "grad_output shape (2, 3, 5, 4)");
    CHECK(module_changes(module, before) == "");
    // And the wrong channel count through the Eigen forward.
    Eigen::Tensor<T, 4, Eigen::RowMajor> four(2, 4, 4, 5);
    four.setConstant(T(0.25));
    auto call_forward = [&] { (void)module.forward(four); };
    NN_CHECK_THROWS(std::invalid_argument, call_forward, "BatchNormalNorm2d", "(2, 4, 4, 5)");
    CHECK(module_changes(module, before) == "");
  }
}

TEMPLATE_TEST_CASE("Eigen weight and bias of different lengths: the message names the layer", "[validation]",
                   float, double) {
  using T = TestType;
  namespace ne = nn::eigen;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  Buffers<T> b(config, Shape{2, 3, 4, 5});
  const auto before = snapshot(b);
  ne::ConstTensorMap<T, 4> input(b.input.data(), 2, 3, 4, 5);
  ne::TensorMap<T, 4> output(b.output.data(), 2, 3, 4, 5);
  auto call = [&] {
    const ne::AffineMaps<T> affine(ne::ConstVectorMap<T>(b.weight.data(), 3), ne::ConstVectorMap<T>(b.bias.data(), 2));
    ne::Forward<T>{config}(Mode::train, input, output, affine, b.args().running, nn::NoiseSource<T>::philox(1, 0),
                           b.context);
  };
  NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "bias");
  CHECK(changes(b, before) == "");
}
