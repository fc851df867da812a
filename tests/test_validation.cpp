// What bad input gets (spec section 6): every public entry point rejects bad
// shapes, sizes, buffers and options with std::invalid_argument, and non-finite
// training input with std::domain_error, each naming the layer and the offending
// argument, before any caller-visible state changes. Also the documented
// behaviour of evaluation on non-finite input.
//
// "Unchanged" is checked bit for bit: outputs and gradients are filled with a
// sentinel beforehand; inputs, parameters and running statistics are copied.
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

const char* mode_name(Mode mode) { return mode == Mode::train ? "train" : "eval"; }

index_t element_count(const Shape& shape) {
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

std::vector<FormCase> form_cases() {
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
index_t group_of(const LayerConfig& config, const Shape& shape, index_t p) {
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

// ---- shapes --------------------------------------------------------------------

TEMPLATE_TEST_CASE("Every form rejects input of the wrong rank or channel count", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      for (const Shape& bad : {form.wrong_rank, form.wrong_channels}) {
        INFO(form.name << ", " << mode_name(mode) << ", input " << bad.to_string());
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.shape = bad;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.to_string());
        CHECK(changes(b, before) == "");

        PrimedModule<T> p(form, mode);
        const auto module_before = state_of(p.module);
        auto module_call = [&] { p.module.forward(p.input.data(), bad, p.output.data()); };
        NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, bad.to_string());
        CHECK(all_sentinel(p.output));
        CHECK(module_changes(p.module, module_before) == "");
      }
    }
  }
}

TEMPLATE_TEST_CASE("GroupNormalNorm rejects num_channels not divisible by num_groups", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::group_normal_norm(4, 6);
  for (const Mode mode : {Mode::train, Mode::eval}) {
    INFO(mode_name(mode));
    Buffers<T> b(config, Shape{2, 6, 3});
    const auto before = snapshot(b);
    auto call = [&] { b.forward(mode); };
    NN_CHECK_THROWS(std::invalid_argument, call, "GroupNormalNorm", "num_groups", "num_channels (6)");
    CHECK(changes(b, before) == "");
  }
  auto construct = [] { nn::GroupNormalNorm<T> module(4, 6); };
  NN_CHECK_THROWS(std::invalid_argument, construct, "GroupNormalNorm", "num_groups (4)");
}

TEMPLATE_TEST_CASE("Zero or negative dimensions are rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      for (const Shape& bad : {form.zero_dim, form.negative_dim}) {
        INFO(form.name << ", " << mode_name(mode) << ", input " << bad.to_string());
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.shape = bad;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.to_string());
        CHECK(changes(b, before) == "");
      }
    }
  }

  SECTION("layer configurations with a zero or negative size") {
    struct BadConfig {
      LayerConfig config;
      const char* name;
      const char* argument;
    };
    const BadConfig configs[] = {
        {LayerConfig::batch_normal_norm_1d(0), "BatchNormalNorm1d", "num_features"},
        {LayerConfig::batch_normal_norm_2d(-3), "BatchNormalNorm2d", "num_features"},
        {LayerConfig::instance_normal_norm_2d(0), "InstanceNormalNorm2d", "num_features"},
        {LayerConfig::group_normal_norm(0, 4), "GroupNormalNorm", "num_groups"},
        {LayerConfig::group_normal_norm(-2, 4), "GroupNormalNorm", "num_groups"},
        {LayerConfig::group_normal_norm(2, 0), "GroupNormalNorm", "num_features"},
        {LayerConfig::layer_normal_norm(Shape{4, 0}), "LayerNormalNorm", "normalized_shape"},
        {LayerConfig::layer_normal_norm(Shape{-4, 5}), "LayerNormalNorm", "normalized_shape"},
        {LayerConfig::layer_normal_norm(Shape{}), "LayerNormalNorm", "normalized_shape"},
    };
    for (const BadConfig& bad : configs) {
      INFO(bad.name << " " << bad.argument);
      Buffers<T> b(bad.config, Shape{2, 4});
      const auto before = snapshot(b);
      auto call = [&] { b.forward(Mode::train); };
      NN_CHECK_THROWS(std::invalid_argument, call, bad.name, bad.argument);
      CHECK(changes(b, before) == "");
      auto construct = [&] { nn::NormalNormModule<T> module(bad.config); };
      NN_CHECK_THROWS(std::invalid_argument, construct, bad.name, bad.argument);
    }
  }
}

TEMPLATE_TEST_CASE("A shape whose element count overflows int64 is rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode) << ", input " << form.overflow.to_string());
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.shape = form.overflow;
      auto call = [&] { b.forward(mode, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, form.overflow.to_string());
      CHECK(changes(b, before) == "");
    }
  }
  SECTION("elements fit in int64 but their bytes do not") {
    const Shape huge{index_t(1) << 60, 3};  // 3 * 2^60 elements, * sizeof(T) bytes > 2^63
    Buffers<T> b(LayerConfig::batch_normal_norm_1d(3), Shape{4, 3});
    const auto before = snapshot(b);
    auto args = b.args();
    args.shape = huge;
    auto call = [&] { b.forward(Mode::eval, args); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm1d", huge.to_string());
    CHECK(changes(b, before) == "");
  }
}

// ---- parameters and running statistics ------------------------------------------

TEMPLATE_TEST_CASE("Weight and bias of the wrong length or null are rejected with affine on", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    const index_t n = form.config.num_affine();
    const std::string expected = std::to_string(n) + " values";
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      struct Case {
        const char* argument;
        std::function<void(nn::ForwardArgs<T>&)> spoil;
        std::string detail;
      };
      const Case cases[] = {
          {"weight", [&](nn::ForwardArgs<T>& a) { a.weight.size = n - 1; }, expected},
          {"weight", [&](nn::ForwardArgs<T>& a) { a.weight.size = n + 1; }, expected},
          {"weight", [](nn::ForwardArgs<T>& a) { a.weight.data = nullptr; }, "null"},
          {"bias", [&](nn::ForwardArgs<T>& a) { a.bias.size = n - 1; }, expected},
          {"bias", [](nn::ForwardArgs<T>& a) { a.bias = {}; }, "null"},
      };
      for (const Case& c : cases) {
        INFO(c.argument << ": " << c.detail);
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        c.spoil(args);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, c.argument, c.detail);
        CHECK(changes(b, before) == "");
      }
    }
    {
      INFO(form.name << ": affine off ignores weight and bias");
      LayerConfig config = form.config;
      config.options.affine = false;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.weight = {};
      args.bias = {};
      CHECK_NOTHROW(b.forward(Mode::train, args));
    }
  }
}

TEMPLATE_TEST_CASE("Batch forms reject running statistics of the wrong length or null", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    if (!nn::is_batch_form(form.config.form)) continue;
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      struct Case {
        const char* argument;
        std::function<void(nn::RunningStats<T>&)> spoil;
        const char* detail;
      };
      const Case cases[] = {
          {"running_mean", [](nn::RunningStats<T>& r) { r.mean = nullptr; }, "null"},
          {"running_var", [](nn::RunningStats<T>& r) { r.var = nullptr; }, "null"},
          {"running_lambda", [](nn::RunningStats<T>& r) { r.lambda = nullptr; }, "null"},
          {"running_norm", [](nn::RunningStats<T>& r) { r.norm = nullptr; }, "null"},
          {"running_mean", [](nn::RunningStats<T>& r) { r.size = 2; }, "must hold 3 values, got 2"},
          {"running_mean", [](nn::RunningStats<T>& r) { r.size = 4; }, "must hold 3 values, got 4"},
          {"running_mean", [](nn::RunningStats<T>& r) { r = {}; }, "null"},
      };
      for (const Case& c : cases) {
        INFO(c.argument << ": " << c.detail);
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        c.spoil(args.running);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, c.argument, c.detail);
        CHECK(changes(b, before) == "");
      }
    }

    {
      INFO(form.name << ": momentum none needs num_batches_tracked");
      LayerConfig config = form.config;
      config.options.momentum = std::nullopt;
      Buffers<T> b(config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.running.num_batches_tracked = nullptr;
      for (const Mode mode : {Mode::train, Mode::eval}) {  // docs/api.md: checked in evaluation too
        INFO(mode_name(mode));
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "num_batches_tracked", "momentum");
        CHECK(changes(b, before) == "");
      }
      // With the count it runs, and counts.
      CHECK_NOTHROW(b.forward(Mode::train));
      CHECK(b.batches == before.batches + 1);
    }

    {
      INFO(form.name << ": without track_running_stats the buffers are ignored");
      LayerConfig config = form.config;
      config.options.track_running_stats = false;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.running = {};
      CHECK_NOTHROW(b.forward(Mode::train, args));
      CHECK_NOTHROW(b.forward(Mode::eval, args));
    }
  }
}

// ---- options ---------------------------------------------------------------------

TEMPLATE_TEST_CASE("Out-of-range options are rejected", "[validation]", float, double) {
  using T = TestType;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct BadOption {
    const char* argument;
    std::function<void(Options&)> set;
    bool batch_only;
  };
  const BadOption bad_options[] = {
      {"momentum", [](Options& o) { o.momentum = -0.1; }, true},
      {"momentum", [](Options& o) { o.momentum = 1.5; }, true},
      {"momentum", [&](Options& o) { o.momentum = nan; }, true},
      {"eps", [](Options& o) { o.eps = -1e-3; }, false},
      {"eps", [&](Options& o) { o.eps = nan; }, false},
      {"eps", [&](Options& o) { o.eps = inf; }, false},
      {"noise_train", [](Options& o) { o.noise_train = -0.5; }, false},
      {"noise_train", [&](Options& o) { o.noise_train = inf; }, false},
      {"alpha", [](Options& o) { o.alpha = -1.0; }, false},
      {"alpha", [&](Options& o) { o.alpha = nan; }, false},
      {"order", [](Options& o) { o.order = 0; }, false},
      {"order", [](Options& o) { o.order = 3; }, false},
  };
  for (const FormCase& form : form_cases()) {
    for (std::size_t k = 0; k < std::size(bad_options); ++k) {
      const BadOption& bad = bad_options[k];
      if (bad.batch_only && !nn::is_batch_form(form.config.form)) continue;
      LayerConfig config = form.config;
      bad.set(config.options);
      for (const Mode mode : {Mode::train, Mode::eval}) {
        INFO(form.name << ", " << mode_name(mode) << ", bad option #" << k << " (" << bad.argument << ")");
        Buffers<T> b(config, form.shape);
        const auto before = snapshot(b);
        auto call = [&] { b.forward(mode); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, bad.argument);
        CHECK(changes(b, before) == "");
      }
      INFO(form.name << ", module constructor, bad option #" << k << " (" << bad.argument << ")");
      auto construct = [&] { nn::NormalNormModule<T> module(config); };
      NN_CHECK_THROWS(std::invalid_argument, construct, form.name, bad.argument);
    }
  }
  SECTION("the named module classes check their options too") {
    Options options = nn::default_options(Form::batch_2d);
    options.momentum = 2.0;
    auto construct = [&] { nn::BatchNormalNorm2d<T> module(3, options); };
    NN_CHECK_THROWS(std::invalid_argument, construct, "BatchNormalNorm2d", "momentum");
    Options layer = nn::default_options(Form::layer);
    layer.order = 3;
    auto construct_layer = [&] { nn::LayerNormalNorm<T> module(Shape{4, 5}, layer); };
    NN_CHECK_THROWS(std::invalid_argument, construct_layer, "LayerNormalNorm", "order");
  }
}

// ---- batch-form training needs more than one value per channel ------------------

TEMPLATE_TEST_CASE("Batch-form training with one value per channel is rejected but evaluation is fine", "[validation]",
                   float, double) {
  using T = TestType;
  std::vector<T> input = make_input<T>(kCapacity);
  std::vector<T> output(static_cast<std::size_t>(kCapacity), kSentinel<T>);

  SECTION("BatchNormalNorm1d, N = 1") {
    nn::BatchNormalNorm1d<T> module(3);
    const Shape single{1, 3};
    const auto before = state_of(module);
    auto call = [&] { module.forward(input.data(), single, output.data()); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm1d", "(1, 3)", "more than one value per channel");
    CHECK(all_sentinel(output));
    CHECK(module_changes(module, before) == "");

    module.eval();
    const auto eval_before = state_of(module);
    REQUIRE_NOTHROW(module.forward(input.data(), single, output.data()));
    for (int i = 0; i < 3; ++i) CHECK(std::isfinite(output[static_cast<std::size_t>(i)]));
    CHECK(output[3] == kSentinel<T>);
    CHECK(module_changes(module, eval_before) == "context ");  // eval saves a context; nothing else moves
  }

  SECTION("BatchNormalNorm2d, N = H = W = 1") {
    nn::BatchNormalNorm2d<T> module(3);
    const Shape single{1, 3, 1, 1};
    const auto before = state_of(module);
    auto call = [&] { module.forward(input.data(), single, output.data()); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "(1, 3, 1, 1)",
                    "more than one value per channel");
    CHECK(all_sentinel(output));
    CHECK(module_changes(module, before) == "");

    module.eval();
    REQUIRE_NOTHROW(module.forward(input.data(), single, output.data()));
    for (int i = 0; i < 3; ++i) CHECK(std::isfinite(output[static_cast<std::size_t>(i)]));
    CHECK(output[3] == kSentinel<T>);
    CHECK(module.training_calls() == 0);
    CHECK(module.num_batches_tracked() == 0);
  }

  SECTION("raw API: two values per channel are enough") {
    Buffers<T> b(LayerConfig::batch_normal_norm_2d(3), Shape{2, 3, 1, 1});
    CHECK_NOTHROW(b.forward(Mode::train));
    Buffers<T> one(LayerConfig::batch_normal_norm_2d(3), Shape{1, 3, 1, 1});
    const auto before = snapshot(one);
    auto call = [&] { one.forward(Mode::train); };
    NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "(1, 3, 1, 1)");
    CHECK(changes(one, before) == "");
  }
}

// ---- noise -----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("Training with noise needs a noise source", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    INFO(form.name);
    {
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::none();
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "noise_train", "noise source");
      CHECK(changes(b, before) == "");
      // Evaluation draws no noise, so it needs no source.
      CHECK_NOTHROW(b.forward(Mode::eval, args));
    }
    {
      Buffers<T> b(form.config, form.shape);
      const auto before = snapshot(b);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::external(nullptr);
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "external noise is null");
      CHECK(changes(b, before) == "");
    }
    {
      // External draws that share bytes with the output.
      Buffers<T> b(form.config, form.shape);
      std::vector<T> normals = make_input<T>(kCapacity);
      const std::vector<T> normals_before = normals;
      const auto before = snapshot(b);
      auto args = b.args();
      args.output = normals.data() + 1;
      args.noise = nn::NoiseSource<T>::external(normals.data());
      auto call = [&] { b.forward(Mode::train, args); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output overlaps the external noise");
      CHECK(same_bits(normals, normals_before));
      CHECK(changes(b, before) == "");
    }
    {
      // noise_train = 0: no source needed.
      LayerConfig config = form.config;
      config.options.noise_train = 0.0;
      Buffers<T> b(config, form.shape);
      auto args = b.args();
      args.noise = nn::NoiseSource<T>::none();
      CHECK_NOTHROW(b.forward(Mode::train, args));
    }
  }
}

// ---- aliasing ----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("Forward output may equal the input exactly but not partly overlap it", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      const Buffers<T> reference = reference_run<T>(form.config, form.shape, mode);
      const index_t n = reference.count();

      for (const int shift : {1, -1}) {
        INFO("output = input " << (shift > 0 ? "+" : "-") << " 1");
        Buffers<T> b(form.config, form.shape);
        std::vector<T> shared(b.input.begin(), b.input.begin() + n + 1);
        const std::vector<T> shared_before = shared;
        const auto before = snapshot(b);
        auto args = b.args();
        args.input = shared.data() + (shift > 0 ? 0 : 1);
        args.output = shared.data() + (shift > 0 ? 1 : 0);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output partly overlaps input");
        CHECK(same_bits(shared, shared_before));
        CHECK(changes(b, before) == "");
      }

      // In place: the same values and statistics as out of place.
      Buffers<T> b(form.config, form.shape);
      std::copy(b.input.begin(), b.input.end(), b.output.begin());
      auto args = b.args();
      args.input = b.output.data();
      REQUIRE_NOTHROW(b.forward(mode, args));
      CHECK(same_bits(head(b.output, n), head(reference.output, n)));
      CHECK(same_running(b, reference));
    }
  }
}

TEMPLATE_TEST_CASE("Forward output must not overlap weight or bias or running statistics", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    const index_t n = element_count(form.shape);
    const index_t affine = form.config.num_affine();
    for (const Mode mode : {Mode::train, Mode::eval}) {
      struct Case {
        const char* argument;
        index_t at;  // where the parameter starts inside the output
      };
      std::vector<Case> cases = {{"weight", n - 1}, {"weight", 0}, {"bias", n / 2}};
      if (form.config.has_running_stats()) cases.push_back({"running_mean", n - 2});
      for (const Case& c : cases) {
        INFO(form.name << ", " << mode_name(mode) << ", " << c.argument << " at output + " << c.at);
        Buffers<T> b(form.config, form.shape);
        std::vector<T> shared(static_cast<std::size_t>(n + affine), kSentinel<T>);
        T* inside = shared.data() + c.at;
        auto args = b.args();
        args.output = shared.data();
        if (std::string(c.argument) == "weight") {
          std::copy(b.weight.begin(), b.weight.end(), inside);
          args.weight.data = inside;
        } else if (std::string(c.argument) == "bias") {
          std::copy(b.bias.begin(), b.bias.end(), inside);
          args.bias.data = inside;
        } else {
          std::copy(b.mean.begin(), b.mean.end(), inside);
          args.running.mean = inside;
        }
        const std::vector<T> shared_before = shared;
        const auto before = snapshot(b);
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output overlaps", c.argument);
        CHECK(same_bits(shared, shared_before));
        CHECK(changes(b, before) == "");
      }
    }
  }
}

TEMPLATE_TEST_CASE("grad_input may equal grad_output or input exactly but not partly overlap them", "[validation]",
                   float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      Buffers<T> b(form.config, form.shape);
      b.forward(mode);
      const index_t n = b.count();
      b.output.assign(b.output.size(), kSentinel<T>);  // backward must not touch the forward's output

      Gradients<T> reference(form.config.num_affine());
      nn::backward(form.config, backward_args(b, reference), b.context);

      {
        INFO("in place on grad_output");
        Gradients<T> g(form.config.num_affine());
        std::copy(g.grad_output.begin(), g.grad_output.end(), g.grad_input.begin());
        auto args = backward_args(b, g);
        args.grad_output = g.grad_input.data();
        REQUIRE_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(same_bits(head(g.grad_input, n), head(reference.grad_input, n)));
        CHECK(same_bits(g.grad_weight, reference.grad_weight));
        CHECK(same_bits(g.grad_bias, reference.grad_bias));
      }

      {
        INFO("in place on input");
        Gradients<T> g(form.config.num_affine());
        std::vector<T> input_copy = b.input;
        auto args = backward_args(b, g);
        args.input = input_copy.data();
        args.grad_input = input_copy.data();
        REQUIRE_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(same_bits(head(input_copy, n), head(reference.grad_input, n)));
        CHECK(same_bits(g.grad_weight, reference.grad_weight));
        CHECK(same_bits(g.grad_bias, reference.grad_bias));
      }

      {
        for (const bool with_grad_output : {true, false}) {
          for (const int shift : {1, -1}) {
            INFO("grad_input = " << (with_grad_output ? "grad_output " : "input ") << (shift > 0 ? "+" : "-") << " 1");
            Gradients<T> g(form.config.num_affine());
            const std::vector<T>& source = with_grad_output ? g.grad_output : b.input;
            std::vector<T> shared(source.begin(), source.begin() + n + 1);
            const std::vector<T> shared_before = shared;
            const auto before = snapshot(b);
            auto args = backward_args(b, g);
            (with_grad_output ? args.grad_output : args.input) = shared.data() + (shift > 0 ? 0 : 1);
            args.grad_input = shared.data() + (shift > 0 ? 1 : 0);
            auto call = [&] { nn::backward(form.config, args, b.context); };
            NN_CHECK_THROWS(std::invalid_argument, call, form.name, "grad_input partly overlaps",
                            with_grad_output ? "grad_output" : "input");
            CHECK(same_bits(shared, shared_before));
            CHECK(g.untouched());
            CHECK(changes(b, before) == "");
          }
        }
      }
    }
  }
}

// ---- null pointers -----------------------------------------------------------------------

TEMPLATE_TEST_CASE("Null input or output or grad_output pointers are rejected", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(form.name << ", " << mode_name(mode));
      {
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.input = nullptr;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "input is null");
        CHECK(changes(b, before) == "");
      }
      {
        Buffers<T> b(form.config, form.shape);
        const auto before = snapshot(b);
        auto args = b.args();
        args.output = nullptr;
        auto call = [&] { b.forward(mode, args); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, "output is null");
        CHECK(changes(b, before) == "");
      }
      {
        Buffers<T> b(form.config, form.shape);
        b.forward(mode);
        for (const char* which : {"input", "grad_output"}) {
          INFO("backward with null " << which);
          Gradients<T> g(form.config.num_affine());
          auto args = backward_args(b, g);
          (std::string(which) == "input" ? args.input : args.grad_output) = nullptr;
          auto call = [&] { nn::backward(form.config, args, b.context); };
          NN_CHECK_THROWS(std::invalid_argument, call, form.name, std::string(which) + " is null");
          CHECK(g.untouched());
        }
        // grad_input may be null: only the parameter gradients are computed.
        Gradients<T> g(form.config.num_affine());
        auto args = backward_args(b, g);
        args.grad_input = nullptr;
        CHECK_NOTHROW(nn::backward(form.config, args, b.context));
        CHECK(all_sentinel(g.grad_input));
        CHECK_FALSE(all_sentinel(g.grad_weight));
      }
    }
  }
}

// ---- backward's context ------------------------------------------------------------------

TEMPLATE_TEST_CASE("Backward needs the context of a forward of the same shape", "[validation]", float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    INFO(form.name);
    {
      // No forward yet.
      Buffers<T> b(form.config, form.shape);
      Gradients<T> g(form.config.num_affine());
      auto call = [&] { nn::backward(form.config, backward_args(b, g), b.context); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "context");
      CHECK(g.untouched());

      PrimedModule<T> p(form, Mode::train);
      nn::NormalNormModule<T> fresh(form.config, 21);
      const auto before = state_of(fresh);
      auto module_call = [&] {
        fresh.backward(p.input.data(), form.shape, p.grad_output.data(), p.grad_input.data());
      };
      NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, "context");
      CHECK(all_sentinel(p.grad_input));
      CHECK(module_changes(fresh, before) == "");
    }
    for (const Mode mode : {Mode::train, Mode::eval}) {
      INFO(mode_name(mode));
      Buffers<T> b(form.config, form.shape);
      b.forward(mode);
      for (const Shape& other : {form.other_batch, form.wrong_rank, form.wrong_channels, form.zero_dim}) {
        INFO("backward with " << other.to_string());
        Gradients<T> g(form.config.num_affine());
        auto args = backward_args(b, g);
        args.shape = other;
        auto call = [&] { nn::backward(form.config, args, b.context); };
        NN_CHECK_THROWS(std::invalid_argument, call, form.name, other.to_string());
        CHECK(g.untouched());
        CHECK(b.context.valid);
      }

      PrimedModule<T> p(form, mode);
      const auto before = state_of(p.module);
      auto module_call = [&] {
        p.module.backward(p.input.data(), form.other_batch, p.grad_output.data(), p.grad_input.data());
      };
      NN_CHECK_THROWS(std::invalid_argument, module_call, form.name, form.other_batch.to_string());
      CHECK(all_sentinel(p.grad_input));
      CHECK(module_changes(p.module, before) == "");
    }
    {
      // Backward's own parameter check: the weight it is given.
      Buffers<T> b(form.config, form.shape);
      b.forward(Mode::train);
      Gradients<T> g(form.config.num_affine());
      auto args = backward_args(b, g);
      args.weight.size -= 1;
      auto call = [&] { nn::backward(form.config, args, b.context); };
      NN_CHECK_THROWS(std::invalid_argument, call, form.name, "weight");
      CHECK(g.untouched());
    }
  }
}

// ---- non-finite input --------------------------------------------------------------------

TEMPLATE_TEST_CASE("Non-finite training input is a domain_error naming the group and nothing changes", "[validation]",
                   float, double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    for (const T poison : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
      INFO(form.name << ", poison " << poison << " in group " << form.poison_group);
      REQUIRE(group_of(form.config, form.shape, form.poison_offset) == form.poison_group);
      const std::string group = "group " + std::to_string(form.poison_group) + " ";
      const auto p = static_cast<std::size_t>(form.poison_offset);
      const index_t n = element_count(form.shape);

      // Raw API.
      {
        Buffers<T> b(form.config, form.shape);
        const T clean = b.input[p];
        b.input[p] = poison;
        const auto before = snapshot(b);
        auto call = [&] { b.forward(Mode::train); };
        NN_CHECK_THROWS(std::domain_error, call, form.name, group);
        CHECK(changes(b, before) == "");

        // A failed forward leaves no context: backward refuses.
        Gradients<T> g(form.config.num_affine());
        auto backward_call = [&] { nn::backward(form.config, backward_args(b, g), b.context); };
        NN_CHECK_THROWS(std::invalid_argument, backward_call, form.name, "context");
        CHECK(g.untouched());

        // The next valid call is the same as if the failed one never happened.
        b.input[p] = clean;
        REQUIRE_NOTHROW(b.forward(Mode::train));
        const Buffers<T> reference = reference_run<T>(form.config, form.shape, Mode::train);
        CHECK(same_bits(b.output, reference.output));
        CHECK(same_running(b, reference));
      }

      // Module: the noise counter does not move either.
      {
        PrimedModule<T> m(form, Mode::train);
        PrimedModule<T> twin(form, Mode::train);
        const T clean = m.input[p];
        m.input[p] = poison;
        const auto before = state_of(m.module);
        auto call = [&] { m.module.forward(m.input.data(), form.shape, m.output.data()); };
        NN_CHECK_THROWS(std::domain_error, call, form.name, group);
        CHECK(all_sentinel(m.output));
        CHECK(module_changes(m.module, before) == "context ");  // documented: a failed forward clears it
        CHECK_FALSE(m.module.context().valid);

        m.input[p] = clean;
        REQUIRE_NOTHROW(m.module.forward(m.input.data(), form.shape, m.output.data()));
        twin.module.forward(twin.input.data(), form.shape, twin.output.data());
        CHECK(m.module.training_calls() == before.calls + 1);
        CHECK(same_bits(m.output, twin.output));
        CHECK(module_changes(m.module, state_of(twin.module)) == "");
        for (index_t i = 0; i < n; ++i) CHECK(std::isfinite(m.output[static_cast<std::size_t>(i)]));
      }
    }
  }
}

TEMPLATE_TEST_CASE("Evaluation with running statistics: a NaN reaches its own element only", "[validation]", float,
                   double) {
  using T = TestType;
  for (const FormCase& form : form_cases()) {
    if (!form.config.has_running_stats()) continue;
    for (const T poison : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
      INFO(form.name << ", poison " << poison);
      const auto p = static_cast<std::size_t>(form.poison_offset);
      const auto n = static_cast<std::size_t>(element_count(form.shape));
      for (const bool simd : {true, false}) {
        INFO((simd ? "SIMD path" : "scalar path"));
        const Buffers<T> clean = reference_run<T>(form.config, form.shape, Mode::eval, nn::Execution{simd});
        Buffers<T> b(form.config, form.shape);
        b.execution.simd = simd;
        b.input[p] = poison;
        const auto before = snapshot(b);
        REQUIRE_NOTHROW(b.forward(Mode::eval));
        if (std::isnan(poison)) CHECK(std::isnan(b.output[p]));
        for (std::size_t i = 0; i < n; ++i) {
          if (i == p) continue;
          INFO("element " << i);
          CHECK(std::isfinite(b.output[i]));
          CHECK(std::memcmp(&b.output[i], &clean.output[i], sizeof(T)) == 0);
        }
        CHECK(same_running(b, clean));
        b.output.assign(b.output.size(), kSentinel<T>);
        CHECK(changes(b, before) == "context ");  // only the (now valid) context
      }

      // Module in eval: the noise counter and statistics stay.
      PrimedModule<T> m(form, Mode::eval);
      m.input[p] = poison;
      const auto module_before = state_of(m.module);
      REQUIRE_NOTHROW(m.module.forward(m.input.data(), form.shape, m.output.data()));
      if (std::isnan(poison)) CHECK(std::isnan(m.output[p]));
      for (std::size_t i = 0; i < n; ++i)
        if (i != p) CHECK(std::isfinite(m.output[i]));
      CHECK(module_changes(m.module, module_before) == "");
    }
  }
}

TEMPLATE_TEST_CASE("Evaluation with statistics from the group: a NaN fills its group only", "[validation]", float,
                   double) {
  using T = TestType;
  for (FormCase form : form_cases()) {
    if (nn::is_batch_form(form.config.form)) {
      form.config.options.track_running_stats = false;  // statistics from the batch, as training
      form.poison_group = group_of(form.config, form.shape, form.poison_offset);
    }
    const auto p = static_cast<std::size_t>(form.poison_offset);
    const index_t n = element_count(form.shape);
    for (const bool simd : {true, false}) {
      INFO(form.name << ", NaN in group " << form.poison_group << ", " << (simd ? "SIMD path" : "scalar path"));
      const Buffers<T> clean = reference_run<T>(form.config, form.shape, Mode::eval, nn::Execution{simd});
      Buffers<T> b(form.config, form.shape);
      b.execution.simd = simd;
      b.input[p] = std::numeric_limits<T>::quiet_NaN();
      REQUIRE_NOTHROW(b.forward(Mode::eval));
      index_t poisoned = 0;
      for (index_t i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        INFO("element " << i);
        if (group_of(form.config, form.shape, i) == form.poison_group) {
          CHECK(std::isnan(b.output[k]));
          ++poisoned;
        } else {
          CHECK(std::isfinite(b.output[k]));
          CHECK(std::memcmp(&b.output[k], &clean.output[k], sizeof(T)) == 0);
        }
      }
      CHECK(poisoned > 1);
      CHECK(poisoned < n);
    }
  }
}

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

// ---- backward buffers overlapping the weight or each other (gaps a review found; fixed) ----

TEMPLATE_TEST_CASE("Backward rejects grad_input overlapping weight", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::layer_normal_norm(Shape{4, 5});
  Buffers<T> b(config, Shape{3, 4, 5});
  b.forward(Mode::train);
  Gradients<T> g(config.num_affine());
  // The weight is grad_input's first 20 values: writing group 0's gradient
  // overwrites the weight that groups 1 and 2 still read (wrong gradients, no error).
  std::copy(b.weight.begin(), b.weight.end(), g.grad_input.begin());
  const std::vector<T> grad_input_before = g.grad_input;
  auto args = backward_args(b, g);
  args.weight.data = g.grad_input.data();
  args.grad_weight = nullptr;
  args.grad_bias = nullptr;
  auto call = [&] { nn::backward(config, args, b.context); };
  NN_CHECK_THROWS(std::invalid_argument, call, "LayerNormalNorm", "grad_input", "weight");
  CHECK(same_bits(g.grad_input, grad_input_before));
}

TEMPLATE_TEST_CASE("Backward rejects grad_weight overlapping grad_bias", "[validation]", float, double) {
  using T = TestType;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  Buffers<T> b(config, Shape{2, 3, 4, 5});
  b.forward(Mode::train);
  Gradients<T> g(4);
  auto args = backward_args(b, g);
  args.grad_weight = g.grad_weight.data();
  args.grad_bias = g.grad_weight.data() + 1;
  auto call = [&] { nn::backward(config, args, b.context); };
  NN_CHECK_THROWS(std::invalid_argument, call, "BatchNormalNorm2d", "grad_weight", "grad_bias");
  CHECK(g.untouched());
}

TEMPLATE_TEST_CASE("A normalized_shape whose element count overflows int64 is rejected", "[validation]",
                   float, double) {
  using T = TestType;
  const index_t big = index_t(1) << 40;
  const LayerConfig config = LayerConfig::layer_normal_norm(Shape{big, big});
  // The options check the module constructor runs first. Only if it rejects the
  // configuration is the constructor called: today it would go on to compute
  // num_affine() = 2^80, a signed overflow (undefined behaviour).
  const std::string message = message_of<std::invalid_argument>([&] { nn::detail::raise_if_error(nn::detail::validate_options(config)); });
  INFO("message: " << message);
  REQUIRE_THAT(message, Catch::StartsWith("normnorm: LayerNormalNorm"));
  CHECK_THAT(message, Catch::Contains("normalized_shape"));
  auto construct = [&] { nn::LayerNormalNorm<T> module(Shape{big, big}); };
  NN_CHECK_THROWS(std::invalid_argument, construct, "LayerNormalNorm", "normalized_shape");
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
