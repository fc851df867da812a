// 2-byte storage types (storage.hpp): Eigen::bfloat16 and Eigen::half tensors with
// float computation. The contract is exact: the output is the float computation on
// the widened input, rounded once to the storage type; running statistics, lambda,
// grad_weight and grad_bias are the float computation's, bit for bit.

#include <normnorm/normnorm.hpp>  // first: defines EIGEN_USE_THREADS before Eigen's Tensor

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

// One layer call in storage type S, with its float parameters and statistics.
template <class S>
struct NarrowLayer {
  LayerConfig config;
  Shape shape;
  MemoryFormat memory_format = MemoryFormat::contiguous;
  std::vector<S> x, out, grad_out, grad_x;
  std::vector<float> weight, bias, grad_weight, grad_bias;
  std::vector<float> running_mean, running_var, running_lambda, running_norm;
  std::int64_t batches = 0;
  SavedContext<float> context;
  NoiseSource<float> noise;

  // The same layer as `reference`, its tensors rounded to S (and `reference`'s then
  // widened back, so both compute on the same values).
  explicit NarrowLayer(Harness<float>& reference)
      : config(reference.config), shape(reference.shape), memory_format(reference.memory_format) {
    for (auto* v : {&reference.x, &reference.grad_out})
      for (float& value : *v) value = static_cast<float>(S(value));
    for (float value : reference.x) x.push_back(S(value));
    for (float value : reference.grad_out) grad_out.push_back(S(value));
    out.assign(x.size(), S(-7.0f));
    grad_x.assign(x.size(), S(-7.0f));
    weight = reference.weight, bias = reference.bias;
    grad_weight = reference.grad_weight, grad_bias = reference.grad_bias;
    running_mean = reference.running_mean, running_var = reference.running_var;
    running_lambda = reference.running_lambda, running_norm = reference.running_norm;
    batches = reference.batches;
    noise = reference.noise;
  }

  void forward(Mode mode) {
    ForwardArgs<S> args;
    args.input = x.data();
    args.shape = shape;
    args.output = out.data();
    args.weight = {weight.data(), static_cast<index_t>(weight.size())};
    args.bias = {bias.data(), static_cast<index_t>(bias.size())};
    args.running = {running_mean.data(), running_var.data(), running_lambda.data(), running_norm.data(), &batches,
                    static_cast<index_t>(running_mean.size())};
    args.noise = noise;
    args.memory_format = memory_format;
    normnorm::forward(config, mode, args, context);
  }

  void backward() {
    BackwardArgs<S> args;
    args.input = x.data();
    args.shape = shape;
    args.grad_output = grad_out.data();
    args.weight = {weight.data(), static_cast<index_t>(weight.size())};
    args.grad_input = grad_x.data();
    args.grad_weight = grad_weight.data();
    args.grad_bias = grad_bias.data();
    args.memory_format = memory_format;
    normnorm::backward(config, args, context);
  }
};

// Equal as the storage type's bits: `narrow` holds S(wide[i]) for every i.
template <class S>
std::string first_rounding_mismatch(const std::vector<S>& narrow, const std::vector<float>& wide) {
  for (std::size_t i = 0; i < wide.size(); ++i) {
    const S want(wide[i]);
    if (std::memcmp(&narrow[i], &want, sizeof(S)) != 0)
      return "element " + std::to_string(i) + ": " + std::to_string(float(narrow[i])) + " vs " + std::to_string(float(want));
  }
  return "";
}

std::vector<FormCase> storage_cases() {
  std::vector<FormCase> cases = form_cases(Options{}, false);
  cases.push_back({LayerConfig::batch_normal_norm_1d(6, default_options(Form::batch_1d)), Shape{20, 6}});  // transposed
  return cases;
}

}  // namespace

TEMPLATE_TEST_CASE("2-byte storage: the float computation on the widened input, rounded once", "[storage]", Eigen::bfloat16,
                   Eigen::half) {
  using S = TestType;
  for (const FormCase& c : storage_cases())
    for (MemoryFormat format : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      const bool nhwc_form = c.config.form == Form::batch_2d || c.config.form == Form::instance_2d ||
                             c.config.form == Form::group;
      if (format == MemoryFormat::channels_last && !nhwc_form) continue;
      INFO(c.config.name() << " " << c.shape.to_string() << (format == MemoryFormat::channels_last ? " NHWC" : ""));
      Harness<float> reference(c.config, c.shape);
      reference.memory_format = format;
      reference.randomize(3);
      reference.noise = NoiseSource<float>::philox(5, 9);
      NarrowLayer<S> layer(reference);

      reference.forward(Mode::train);
      layer.forward(Mode::train);
      CHECK(first_rounding_mismatch(layer.out, reference.out) == "");
      CHECK(layer.running_mean == reference.running_mean);
      CHECK(layer.running_var == reference.running_var);
      CHECK(layer.running_lambda == reference.running_lambda);
      CHECK(layer.running_norm == reference.running_norm);
      CHECK(layer.batches == reference.batches);
      CHECK(layer.context.lambda == reference.context.lambda);

      reference.backward();
      layer.backward();
      CHECK(first_rounding_mismatch(layer.grad_x, reference.grad_x) == "");
      CHECK(layer.grad_weight == reference.grad_weight);
      CHECK(layer.grad_bias == reference.grad_bias);

      // Evaluation (running statistics for the batch forms, the group's otherwise).
      reference.forward(Mode::eval);
      layer.forward(Mode::eval);
      CHECK(first_rounding_mismatch(layer.out, reference.out) == "");
    }
}

TEMPLATE_TEST_CASE("2-byte storage: memory_plan counts the widened copies exactly", "[storage][memory_plan]",
                   Eigen::bfloat16, Eigen::half) {
  using S = TestType;
  for (const FormCase& c : storage_cases()) {
    INFO(c.config.name() << " " << c.shape.to_string());
    Harness<float> reference(c.config, c.shape);
    reference.randomize(4);
    reference.noise = NoiseSource<float>::philox(1, 2);
    NarrowLayer<S> layer(reference);
    const MemoryPlan plan = memory_plan<S>(c.config, c.shape, Mode::train);
    const MemoryPlan float_plan = memory_plan<float>(c.config, c.shape, Mode::train);
    CHECK(plan.forward_workspace > float_plan.forward_workspace);
    layer.forward(Mode::train);
    CHECK(layer.context.workspace.capacity() == plan.forward_workspace);
    CHECK(layer.context.state_bytes() == plan.state);
    layer.backward();
    CHECK(layer.context.workspace.capacity() == plan.workspace());
  }
}

TEMPLATE_TEST_CASE("2-byte storage: bad input is refused and nothing is written", "[storage]", Eigen::bfloat16,
                   Eigen::half) {
  using S = TestType;
  Harness<float> reference(LayerConfig::batch_normal_norm_2d(3, Options{}), Shape{2, 3, 4, 4});
  reference.randomize(5);
  reference.noise = NoiseSource<float>::philox(1, 2);

  SECTION("NaN in training input: domain_error, output and running statistics unchanged") {
    NarrowLayer<S> layer(reference);
    layer.x[17] = S(std::numeric_limits<float>::quiet_NaN());
    const auto out_before = layer.out;
    const auto mean_before = layer.running_mean;
    CHECK_THROWS_AS(layer.forward(Mode::train), std::domain_error);
    CHECK(std::memcmp(layer.out.data(), out_before.data(), out_before.size() * sizeof(S)) == 0);
    CHECK(layer.running_mean == mean_before);
    CHECK(layer.batches == 0);
  }
  SECTION("an output partly overlapping the input") {
    NarrowLayer<S> layer(reference);
    std::vector<S> storage(layer.x.size() + 1);
    for (std::size_t i = 0; i < layer.x.size(); ++i) storage[i] = layer.x[i];
    ForwardArgs<S> args;
    args.input = storage.data();
    args.output = storage.data() + 1;
    args.shape = layer.shape;
    args.weight = {layer.weight.data(), 3};
    args.bias = {layer.bias.data(), 3};
    args.running = {layer.running_mean.data(), layer.running_var.data(), layer.running_lambda.data(),
                    layer.running_norm.data(), &layer.batches, 3};
    args.noise = layer.noise;
    CHECK_THROWS_WITH(forward(layer.config, Mode::train, args, layer.context),
                      Catch::Contains("partly overlaps an input"));
    CHECK(layer.batches == 0);
  }
  SECTION("a running statistic inside the output") {
    NarrowLayer<S> layer(reference);
    ForwardArgs<S> args;
    args.input = layer.x.data();
    args.output = layer.out.data();
    args.shape = layer.shape;
    args.weight = {layer.weight.data(), 3};
    args.bias = {layer.bias.data(), 3};
    args.running = {reinterpret_cast<float*>(layer.out.data()), layer.running_var.data(), layer.running_lambda.data(),
                    layer.running_norm.data(), &layer.batches, 3};
    args.noise = layer.noise;
    CHECK_THROWS_WITH(forward(layer.config, Mode::train, args, layer.context), Catch::Contains("overlaps"));
  }
  SECTION("a backward without a forward") {
    NarrowLayer<S> layer(reference);
    CHECK_THROWS_WITH(layer.backward(), Catch::Contains("successful forward"));
  }
}

TEST_CASE("half storage: outputs beyond 65504 round to infinity, as a float16 tensor would hold them", "[storage]") {
  // Gamma 1e5 scales every output past half's range: the float result is finite, the
  // half one is +-Inf (round to nearest), never NaN.
  Options options;
  options.noise_train = 0;
  Harness<float> reference(LayerConfig::batch_normal_norm_1d(2, options), Shape{8, 2});
  reference.randomize(6);
  reference.weight = {1e5f, 1e5f};
  NarrowLayer<Eigen::half> layer(reference);
  reference.forward(Mode::train);
  layer.forward(Mode::train);
  for (std::size_t i = 0; i < layer.out.size(); ++i) {
    const float value = float(layer.out[i]);
    CHECK(!std::isnan(value));
    if (std::abs(reference.out[i]) > 65520.0f) CHECK(std::isinf(value));
  }
}

TEST_CASE("2-byte storage through the Eigen functors: the raw-pointer API's result, bit for bit", "[storage]") {
  using S = Eigen::bfloat16;
  Harness<float> reference(LayerConfig::group_normal_norm(2, 4, Options{}), Shape{3, 4, 3, 5});
  reference.randomize(8);
  reference.noise = NoiseSource<float>::philox(3, 4);
  NarrowLayer<S> raw(reference), mapped(reference);
  raw.forward(Mode::train);
  raw.backward();

  using eigen::ConstTensorMap;
  using eigen::ConstVectorMap;
  using eigen::TensorMap;
  using eigen::VectorMap;
  const eigen::AffineMaps<float> affine(ConstVectorMap<float>(mapped.weight.data(), 4),
                                        ConstVectorMap<float>(mapped.bias.data(), 4));
  eigen::Forward<S>{mapped.config}(Mode::train, ConstTensorMap<S, 4>(mapped.x.data(), 3, 4, 3, 5),
                                   TensorMap<S, 4>(mapped.out.data(), 3, 4, 3, 5), affine, RunningStats<float>{},
                                   mapped.noise, mapped.context);
  eigen::Backward<S>{mapped.config}(ConstTensorMap<S, 4>(mapped.x.data(), 3, 4, 3, 5),
                                    ConstTensorMap<S, 4>(mapped.grad_out.data(), 3, 4, 3, 5), affine,
                                    TensorMap<S, 4>(mapped.grad_x.data(), 3, 4, 3, 5),
                                    eigen::AffineGradMaps<float>(VectorMap<float>(mapped.grad_weight.data(), 4),
                                                                 VectorMap<float>(mapped.grad_bias.data(), 4)),
                                    mapped.context);
  CHECK(std::memcmp(mapped.out.data(), raw.out.data(), raw.out.size() * sizeof(S)) == 0);
  CHECK(std::memcmp(mapped.grad_x.data(), raw.grad_x.data(), raw.grad_x.size() * sizeof(S)) == 0);
  CHECK(mapped.grad_weight == raw.grad_weight);
}

TEST_CASE("2-byte storage in a module: float parameters, the raw-pointer API's result, infer equals eval", "[storage]") {
  using S = Eigen::half;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3, Options{});
  Harness<float> reference(config, Shape{2, 3, 4, 5});
  reference.randomize(9);
  BatchNormalNorm2d<S> module(3, Options{}, /*seed=*/7);
  NarrowLayer<S> raw(reference);
  raw.noise = NoiseSource<float>::philox(7, 0);  // the module's first training call
  module.weight() = raw.weight;
  module.bias() = raw.bias;
  std::vector<S> out(raw.x.size(), S(0.0f));
  module.forward(raw.x.data(), raw.shape, out.data());
  raw.forward(Mode::train);
  CHECK(std::memcmp(out.data(), raw.out.data(), out.size() * sizeof(S)) == 0);
  CHECK(std::vector<float>(module.running_mean().begin(), module.running_mean().end()) == raw.running_mean);
  module.eval();
  std::vector<S> evaluated(out.size(), S(0.0f)), inferred(out.size(), S(0.0f));
  module.forward(raw.x.data(), raw.shape, evaluated.data());
  module.infer(raw.x.data(), raw.shape, inferred.data());
  CHECK(std::memcmp(evaluated.data(), inferred.data(), out.size() * sizeof(S)) == 0);
}

TEMPLATE_TEST_CASE("2-byte conversions: exactly Eigen's, for every 2-byte value and a sweep of floats", "[storage]",
                   Eigen::bfloat16, Eigen::half) {
  using S = TestType;
  auto raw = [](const S& value) {
    std::uint16_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
  };
  auto float_bits = [](float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
  };
  // Widening: all 65,536 values (NaN payloads included), compared as bits.
  std::vector<S> narrow_values(65536);
  for (std::uint32_t v = 0; v < 65536; ++v) {
    const auto bits = static_cast<std::uint16_t>(v);
    std::memcpy(static_cast<void*>(&narrow_values[v]), &bits, sizeof bits);
  }
  std::vector<float> widened(65536);
  normnorm::detail::widen(narrow_values.data(), widened.data(), 65536);
  std::size_t widen_mismatches = 0;
  for (std::size_t v = 0; v < 65536; ++v)
    widen_mismatches += float_bits(widened[v]) != float_bits(static_cast<float>(narrow_values[v]));
  CHECK(widen_mismatches == 0);
  // Rounding: every float whose low 13 bits are one of a few patterns around the
  // rounding points (ties, just below, just above), over all exponents and signs,
  // plus every widened 2-byte value and specials.
  std::vector<float> floats;
  auto add_bits = [&](std::uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    floats.push_back(value);
  };
  for (std::uint32_t high = 0; high < (1u << 19); ++high)  // half rounds at bit 13
    for (std::uint32_t low : {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u, 0x1fffu}) add_bits((high << 13) | low);
  for (std::uint32_t high = 0; high < (1u << 16); ++high)  // bfloat16 at bit 16
    for (std::uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) add_bits((high << 16) | low);
  floats.insert(floats.end(), widened.begin(), widened.end());
  for (float special : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, -65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f,
                        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()})
    floats.push_back(special);
  std::vector<S> rounded(floats.size());
  normnorm::detail::narrow(floats.data(), rounded.data(), static_cast<index_t>(floats.size()));
  std::size_t narrow_mismatches = 0;
  for (std::size_t i = 0; i < floats.size(); ++i) narrow_mismatches += raw(rounded[i]) != raw(S(floats[i]));
  CHECK(narrow_mismatches == 0);
  CHECK(floats.size() > 3500000);
}

TEMPLATE_TEST_CASE("2-byte prepared evaluation: the forward's result in evaluation mode, bit for bit", "[storage]",
                   Eigen::bfloat16, Eigen::half) {
  using S = TestType;
  Eigen::ThreadPool pool(2);
  Eigen::ThreadPoolDevice device(&pool, 2);
  struct Case {
    LayerConfig config;
    Shape shape;
    MemoryFormat format;
  };
  // Rows of (N, C) across more channels than one block (256), runs longer than one block,
  // channels-last rows, and the 3-D form.
  const std::vector<Case> cases = {
      {LayerConfig::batch_normal_norm_1d(300, Options{}), Shape{7, 300}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_1d(3, Options{}), Shape{4, 3, 600}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_2d(5, Options{}), Shape{3, 5, 17, 19}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_2d(5, Options{}), Shape{3, 5, 6, 7}, MemoryFormat::channels_last},
      {LayerConfig::batch_normal_norm_3d(2, Options{}), Shape{2, 2, 3, 4, 50}, MemoryFormat::contiguous},
  };
  int checked = 0;
  for (const Case& c : cases)
    for (EvaluationMap map : {EvaluationMap::exact, EvaluationMap::polynomial})
      for (bool threaded : {false, true}) {
        INFO(c.config.name() << " " << c.shape.to_string() << " map " << int(map) << " threads " << threaded);
        LayerConfig config = c.config;
        config.options.evaluation_map = map;
        Harness<float> reference(config, c.shape);
        reference.memory_format = c.format;
        reference.randomize(31);
        reference.noise = NoiseSource<float>::philox(3, 0);
        reference.forward(Mode::train);  // running statistics away from their initial values
        reference.forward(Mode::train);
        NarrowLayer<S> layer(reference);
        layer.memory_format = c.format;
        layer.forward(Mode::eval);
        EvaluationCache<float> cache;
        prepare_evaluation<float>(config, {layer.weight.data(), static_cast<index_t>(layer.weight.size())},
                                  {layer.bias.data(), static_cast<index_t>(layer.bias.size())},
                                  {layer.running_mean.data(), layer.running_var.data(), layer.running_lambda.data(),
                                   layer.running_norm.data(), &layer.batches, static_cast<index_t>(layer.running_mean.size())},
                                  cache);
        Execution execution;
        execution.device = threaded ? &device : nullptr;
        std::vector<S> evaluated(layer.x.size(), S(-3.0f));
        evaluate(config, EvaluateArgs<S>{layer.x.data(), c.shape, evaluated.data(), c.format}, cache, execution);
        CHECK(std::memcmp(evaluated.data(), layer.out.data(), evaluated.size() * sizeof(S)) == 0);
        // In place.
        std::vector<S> in_place = layer.x;
        evaluate(config, EvaluateArgs<S>{in_place.data(), c.shape, in_place.data(), c.format}, cache, execution);
        CHECK(std::memcmp(in_place.data(), layer.out.data(), in_place.size() * sizeof(S)) == 0);
        ++checked;
      }
  CHECK(checked == 5 * 2 * 2);
}

TEST_CASE("a 2-byte evaluation after a training forward: its backward plans and takes the copy", "[storage][columns]") {
  // A training forward walks (64, 8) columns in place; the evaluation that follows runs the
  // fixed map, so its backward takes the copy, as memory_plan says for an evaluation: it
  // fits a workspace of exactly that size.
  Harness<float> reference(LayerConfig::batch_normal_norm_1d(8, default_options(Form::batch_1d)), Shape{64, 8});
  reference.randomize(5);
  reference.noise = NoiseSource<float>::philox(2, 2);
  NarrowLayer<Eigen::bfloat16> layer(reference);
  layer.forward(Mode::train);
  CHECK(layer.context.columns_in_place);
  layer.forward(Mode::eval);
  CHECK_FALSE(layer.context.columns_in_place);
  const std::size_t bytes = memory_plan<Eigen::bfloat16>(layer.config, layer.shape, Mode::eval).backward_workspace;
  std::unique_ptr<void, void (*)(void*)> block(std::aligned_alloc(Workspace::alignment, bytes), std::free);
  REQUIRE(layer.context.workspace.provide(block.get(), bytes));
  CHECK_NOTHROW(layer.backward());
}
