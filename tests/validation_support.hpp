#pragma once
// Shared by the tests/test_validation_*.cpp files: sentinel-filled buffers, a
// snapshot of caller-visible state, and checks that a call is refused with the
// expected exception and message while nothing changes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace {

namespace nn = normnorm;
using nn::Form;
using nn::index_t;
using nn::LayerConfig;
using nn::Mode;
using nn::Options;
using nn::Shape;

template <class T>
constexpr T kSentinel = T(-7777.25);

// Every buffer is at least this long, so a wrongly shaped call that the library
// (wrongly) went on to run could not run off the end of it.
constexpr index_t kCapacity = 512;

[[maybe_unused]] const char* mode_name(Mode mode) { return mode == Mode::train ? "train" : "eval"; }

[[maybe_unused]] index_t element_count(const Shape& shape) {
  index_t count = 1;
  for (index_t d : shape) count *= d;
  return count;
}

template <class T>
std::vector<T> make_input(index_t count) {
  std::vector<T> values(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = T(2.0 * std::sin(0.37 * static_cast<double>(i) + 0.1) + 0.3 * static_cast<double>((i * 7) % 5) - 0.4);
  return values;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
bool all_sentinel(const std::vector<T>& values) {
  for (const T& v : values)
    if (!(v == kSentinel<T>)) return false;
  return true;
}

// The message of the expected exception; "<...>" when none, or another type, was thrown.
template <class E, class F>
std::string message_of(F&& call) {
  try {
    call();
  } catch (const E& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("<wrong exception type: ") + error.what() + ">";
  }
  return "<no exception>";
}

// The call throws Exception (exactly that family) with a normnorm message containing every part.
#define NN_CHECK_THROWS(Exception, call, ...)                                                   \
  do {                                                                                          \
    const std::string nn_message = message_of<Exception>(call);                                \
    INFO("message: " << nn_message);                                                            \
    CHECK_THAT(nn_message, Catch::StartsWith("normnorm: "));                                    \
    for (const std::string& nn_part : std::initializer_list<std::string>{__VA_ARGS__})          \
      CHECK_THAT(nn_message, Catch::Contains(nn_part));                                         \
  } while (false)

// One configuration per form, with a valid input shape and invalid ones.
struct FormCase {
  const char* name;
  LayerConfig config;
  Shape shape;           // valid
  Shape other_batch;     // valid, another batch size (a different layout)
  Shape wrong_rank;
  Shape wrong_channels;  // wrong C, or (layer form) trailing axes != normalized_shape
  Shape zero_dim, negative_dim;
  Shape overflow;        // element count does not fit in int64
  index_t poison_offset, poison_group;  // an element and the index of its group
};

[[maybe_unused]] std::vector<FormCase> form_cases() {
  const index_t big31 = index_t(1) << 31, big40 = index_t(1) << 40, big62 = index_t(1) << 62;
  return {
      {"BatchNormalNorm1d", LayerConfig::batch_normal_norm_1d(3), Shape{4, 3}, Shape{5, 3}, Shape{4, 3, 5, 2},
       Shape{4, 5}, Shape{0, 3}, Shape{4, -3}, Shape{big62, 3}, 2 * 3 + 1, 1},
      {"BatchNormalNorm1d", LayerConfig::batch_normal_norm_1d(3), Shape{2, 3, 4}, Shape{3, 3, 4}, Shape{2, 3, 4, 1},
       Shape{2, 4, 4}, Shape{2, 3, 0}, Shape{2, 3, -4}, Shape{big31, 3, big31}, 12 + 2 * 4 + 1, 2},  // (N, C, L)
      {"BatchNormalNorm2d", LayerConfig::batch_normal_norm_2d(3), Shape{2, 3, 4, 5}, Shape{3, 3, 4, 5}, Shape{4, 3, 5},
       Shape{2, 4, 4, 5}, Shape{2, 3, 0, 5}, Shape{2, 3, 4, -5}, Shape{big31, 3, big31, 4}, 60 + 2 * 20 + 3 * 5 + 4, 2},
      {"LayerNormalNorm", LayerConfig::layer_normal_norm(Shape{4, 5}), Shape{3, 4, 5}, Shape{2, 4, 5}, Shape{5},
       Shape{3, 5, 4}, Shape{0, 4, 5}, Shape{-3, 4, 5}, Shape{big40, big40, 4, 5}, 20 + 7, 1},
      {"GroupNormalNorm", LayerConfig::group_normal_norm(2, 4), Shape{2, 4, 3}, Shape{3, 4, 3}, Shape{4},
       Shape{2, 6, 3}, Shape{2, 4, 0}, Shape{-2, 4, 3}, Shape{big40, 4, big40}, 12 + 2 * 3 + 0, 3},
      {"InstanceNormalNorm2d", LayerConfig::instance_normal_norm_2d(3), Shape{2, 3, 4, 4}, Shape{1, 3, 4, 4},
       Shape{2, 3, 16}, Shape{2, 2, 4, 4}, Shape{2, 3, 4, 0}, Shape{2, 3, -4, 4}, Shape{big31, 3, big31, 4},
       48 + 0 * 16 + 2 * 4 + 2, 3},
      {"BatchNormalNorm3d", LayerConfig::batch_normal_norm_3d(3), Shape{2, 3, 2, 2, 3}, Shape{3, 3, 2, 2, 3},
       Shape{2, 3, 4, 3}, Shape{2, 4, 2, 2, 3}, Shape{2, 3, 0, 2, 3}, Shape{2, 3, 2, -2, 3},
       Shape{big31, 3, big31, 1, 4}, 36 + 1 * 12 + 5, 1},
      {"InstanceNormalNorm1d", LayerConfig::instance_normal_norm_1d(3), Shape{2, 3, 5}, Shape{1, 3, 5},
       Shape{2, 3, 5, 2}, Shape{2, 2, 5}, Shape{2, 3, 0}, Shape{2, -3, 5}, Shape{big31, 3, big31},
       15 + 2 * 5 + 3, 5},
      {"InstanceNormalNorm3d", LayerConfig::instance_normal_norm_3d(3), Shape{2, 3, 2, 2, 2}, Shape{1, 3, 2, 2, 2},
       Shape{2, 3, 8}, Shape{2, 2, 2, 2, 2}, Shape{2, 3, 2, 0, 2}, Shape{2, 3, -2, 2, 2},
       Shape{big31, 3, big31, 2, 2}, 24 + 1 * 8 + 3, 4},
  };
}

// Which group flat offset p of `shape` belongs to, written from the forms' definitions.
[[maybe_unused]] index_t group_of(const LayerConfig& config, const Shape& shape, index_t p) {
  const index_t channels = config.form == Form::layer ? config.num_affine() : shape[1];
  index_t inner = 1;
  if (config.form != Form::layer)
    for (int axis = 2; axis < shape.rank(); ++axis) inner *= shape[axis];
  switch (config.form) {
    case Form::batch_1d:
    case Form::batch_2d:
    case Form::batch_3d: return (p / inner) % channels;
    case Form::layer: return p / channels;
    case Form::instance_1d:
    case Form::instance_2d:
    case Form::instance_3d: return p / inner;
    case Form::group: {
      const index_t sample = p / (channels * inner), channel = (p / inner) % channels;
      return sample * config.num_groups + channel / (channels / config.num_groups);
    }
  }
  return -1;
}

// Caller-owned buffers for one raw-pointer forward / backward.
template <class T>
struct Buffers {
  LayerConfig config;
  Shape shape;
  std::vector<T> input, output, weight, bias, mean, var, lambda, norm;
  std::int64_t batches = 3;
  nn::SavedContext<T> context;
  nn::Execution execution;

  Buffers(const LayerConfig& layer, const Shape& input_shape) : config(layer), shape(input_shape) {
    input = make_input<T>(kCapacity);
    output.assign(static_cast<std::size_t>(kCapacity), kSentinel<T>);
    const auto affine = static_cast<std::size_t>(std::max<index_t>(0, config.num_affine()));
    for (std::size_t i = 0; i < affine; ++i) {
      weight.push_back(T(1.0 + 0.125 * static_cast<double>(i % 4)));
      bias.push_back(T(0.0625 * static_cast<double>(i % 3) - 0.05));
    }
    const auto running = static_cast<std::size_t>(std::max<index_t>(0, config.num_running()));
    for (std::size_t c = 0; c < running; ++c) {
      const double k = static_cast<double>(c);
      mean.push_back(T(0.1 * k - 0.05));
      var.push_back(T(0.8 + 0.3 * k));
      lambda.push_back(T(0.9 + 0.05 * k));
      norm.push_back(T(0.75 + 0.01 * k));
    }
  }

  index_t count() const { return element_count(shape); }

  nn::ForwardArgs<T> args() {
    nn::ForwardArgs<T> a;
    a.input = input.data();
    a.shape = shape;
    a.output = output.data();
    a.weight = {weight.data(), static_cast<index_t>(weight.size())};
    a.bias = {bias.data(), static_cast<index_t>(bias.size())};
    a.running.mean = mean.data();
    a.running.var = var.data();
    a.running.lambda = lambda.data();
    a.running.norm = norm.data();
    a.running.num_batches_tracked = &batches;
    a.running.size = static_cast<index_t>(mean.size());
    a.noise = nn::NoiseSource<T>::philox(11, 0);
    return a;
  }

  void forward(Mode mode, const nn::ForwardArgs<T>& a) { nn::forward(config, mode, a, context, execution); }
  void forward(Mode mode) { forward(mode, args()); }
};

template <class T>
struct Snapshot {
  std::vector<T> input, weight, bias, mean, var, lambda, norm;
  std::int64_t batches;
  bool context_valid;
};

template <class T>
Snapshot<T> snapshot(const Buffers<T>& b) {
  return {b.input, b.weight, b.bias, b.mean, b.var, b.lambda, b.norm, b.batches, b.context.valid};
}

// What changed since the snapshot ("" when nothing). The output must still be all sentinel.
template <class T>
std::string changes(const Buffers<T>& b, const Snapshot<T>& s) {
  std::string what;
  if (!all_sentinel(b.output)) what += "output ";
  if (!same_bits(b.input, s.input)) what += "input ";
  if (!same_bits(b.weight, s.weight)) what += "weight ";
  if (!same_bits(b.bias, s.bias)) what += "bias ";
  if (!same_bits(b.mean, s.mean)) what += "running_mean ";
  if (!same_bits(b.var, s.var)) what += "running_var ";
  if (!same_bits(b.lambda, s.lambda)) what += "running_lambda ";
  if (!same_bits(b.norm, s.norm)) what += "running_norm ";
  if (b.batches != s.batches) what += "num_batches_tracked ";
  if (b.context.valid != s.context_valid) what += "context ";
  return what;
}

// Running statistics of two runs, bit for bit.
template <class T>
bool same_running(const Buffers<T>& a, const Buffers<T>& b) {
  return same_bits(a.mean, b.mean) && same_bits(a.var, b.var) && same_bits(a.lambda, b.lambda) &&
         same_bits(a.norm, b.norm) && a.batches == b.batches;
}

// ---- modules -----------------------------------------------------------------

template <class T>
struct ModuleState {
  std::vector<T> weight, bias, grad_weight, grad_bias, mean, var, lambda, norm;
  std::int64_t batches;
  std::uint64_t calls;
  bool context_valid, training;
};

template <class T>
ModuleState<T> state_of(nn::NormalNormModule<T>& m) {
  auto values = [](nn::Span<T> s) { return std::vector<T>(s.begin(), s.end()); };
  return {m.weight(),       m.bias(),         m.grad_weight(),       m.grad_bias(),
          values(m.running_mean()), values(m.running_var()),  values(m.running_lambda()), values(m.running_norm()),
          m.num_batches_tracked(), m.training_calls(), m.context().valid, m.is_training()};
}

template <class T>
std::string module_changes(nn::NormalNormModule<T>& m, const ModuleState<T>& s) {
  std::string what;
  if (!same_bits(m.weight(), s.weight)) what += "weight ";
  if (!same_bits(m.bias(), s.bias)) what += "bias ";
  if (!same_bits(m.grad_weight(), s.grad_weight)) what += "grad_weight ";
  if (!same_bits(m.grad_bias(), s.grad_bias)) what += "grad_bias ";
  if (!same_bits(std::vector<T>(m.running_mean().begin(), m.running_mean().end()), s.mean)) what += "running_mean ";
  if (!same_bits(std::vector<T>(m.running_var().begin(), m.running_var().end()), s.var)) what += "running_var ";
  if (!same_bits(std::vector<T>(m.running_lambda().begin(), m.running_lambda().end()), s.lambda)) what += "running_lambda ";
  if (!same_bits(std::vector<T>(m.running_norm().begin(), m.running_norm().end()), s.norm)) what += "running_norm ";
  if (m.num_batches_tracked() != s.batches) what += "num_batches_tracked ";
  if (m.training_calls() != s.calls) what += "training_calls ";
  if (m.context().valid != s.context_valid) what += "context ";
  if (m.is_training() != s.training) what += "mode ";
  return what;
}

// A module that has run one valid training forward and one backward (non-trivial
// parameters, statistics, gradients and context), then switched to `mode`.
template <class T>
struct PrimedModule {
  nn::NormalNormModule<T> module;
  std::vector<T> input, output, grad_output, grad_input;

  PrimedModule(const FormCase& form, Mode mode) : module(form.config, 21) {
    input = make_input<T>(kCapacity);
    output.assign(static_cast<std::size_t>(kCapacity), kSentinel<T>);
    grad_output = make_input<T>(kCapacity + 3);
    grad_output.erase(grad_output.begin(), grad_output.begin() + 3);
    grad_input.assign(static_cast<std::size_t>(kCapacity), kSentinel<T>);
    for (std::size_t i = 0; i < module.weight().size(); ++i) {
      module.weight()[i] = T(1.0 - 0.1 * static_cast<double>(i % 3));
      module.bias()[i] = T(0.02 * static_cast<double>(i % 5));
    }
    module.forward(input.data(), form.shape, output.data());
    module.backward(input.data(), form.shape, grad_output.data(), grad_input.data());
    module.train(mode == Mode::train);
    std::fill(output.begin(), output.end(), kSentinel<T>);
    std::fill(grad_input.begin(), grad_input.end(), kSentinel<T>);
  }
};

// A valid first training call of a fresh layer, for comparing against.
template <class T>
Buffers<T> reference_run(const LayerConfig& config, const Shape& shape, Mode mode, nn::Execution execution = {}) {
  Buffers<T> reference(config, shape);
  reference.execution = execution;
  reference.forward(mode);
  return reference;
}

// ---- backward ----------------------------------------------------------------

template <class T>
struct Gradients {
  std::vector<T> grad_output, grad_input, grad_weight, grad_bias;
  explicit Gradients(index_t affine) {
    grad_output = make_input<T>(kCapacity + 5);
    grad_output.erase(grad_output.begin(), grad_output.begin() + 5);
    grad_input.assign(static_cast<std::size_t>(kCapacity), kSentinel<T>);
    grad_weight.assign(static_cast<std::size_t>(std::max<index_t>(0, affine)), kSentinel<T>);
    grad_bias.assign(grad_weight.size(), kSentinel<T>);
  }
  bool untouched() const { return all_sentinel(grad_input) && all_sentinel(grad_weight) && all_sentinel(grad_bias); }
};

template <class T>
nn::BackwardArgs<T> backward_args(Buffers<T>& b, Gradients<T>& g) {
  nn::BackwardArgs<T> a;
  a.input = b.input.data();
  a.shape = b.shape;
  a.grad_output = g.grad_output.data();
  a.weight = {b.weight.data(), static_cast<index_t>(b.weight.size())};
  a.grad_input = g.grad_input.data();
  a.grad_weight = g.grad_weight.data();
  a.grad_bias = g.grad_bias.data();
  return a;
}

template <class T>
std::vector<T> head(const std::vector<T>& values, index_t count) {
  return std::vector<T>(values.begin(), values.begin() + count);
}

}  // namespace
