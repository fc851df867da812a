// The 1-D/3-D forms PyTorch users expect: BatchNormalNorm1d on (N, C, L),
// BatchNormalNorm3d, InstanceNormalNorm1d/3d and channels-last-3d. Each is a
// layout over the same engine, so on the same data it must give exactly what the
// 2-D form gives on a reshaped view; the golden cases (tests/golden_ranks/) check
// the definition itself.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance/golden_case.hpp"
#include "gradcheck.hpp"
#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

#ifndef NORMNORM_TEST_DATA_DIR
#define NORMNORM_TEST_DATA_DIR "tests/data"
#endif

const char* const kRankCases[] = {"bn1d_ncl_4x3x7", "bn1d_ncl_o1_a0.5_mNone_5x2x6", "bn3d_3x2x3x4x5",
                                  "bn3d_o2_a0.5_mNone_2x3x2x3x2", "in1d_3x4x9", "in1d_o1_a0.5_2x3x11",
                                  "in3d_2x3x3x4x5"};

Options options_with_order(Form form, int order) {
  Options o = default_options(form);
  o.order = order;
  return o;
}

// Runs `a` and `b` (the same data under two shapes) through train, train, eval with the
// same philox noise, and requires bit-identical outputs, gradients and statistics.
template <class T>
void require_identical_runs(Harness<T>& a, Harness<T>& b) {
  REQUIRE(a.x.size() == b.x.size());
  a.randomize(31);
  b.x = a.x, b.weight = a.weight, b.bias = a.bias, b.grad_out = a.grad_out;
  a.noise = b.noise = NoiseSource<T>::philox(77, 3);
  for (Mode mode : {Mode::train, Mode::train, Mode::eval}) {
    INFO((mode == Mode::train ? "train" : "eval"));
    a.forward(mode);
    b.forward(mode);
    a.backward();
    b.backward();
    CHECK(a.out == b.out);
    CHECK(a.grad_x == b.grad_x);
    CHECK(a.grad_weight == b.grad_weight);
    CHECK(a.grad_bias == b.grad_bias);
    CHECK(a.running_mean == b.running_mean);
    CHECK(a.running_var == b.running_var);
    CHECK(a.running_lambda == b.running_lambda);
    CHECK(a.running_norm == b.running_norm);
  }
}

std::string forward_error(const LayerConfig& config, const Shape& shape, MemoryFormat format = MemoryFormat::contiguous) {
  Harness<double> layer(config, shape);
  layer.memory_format = format;
  layer.noise = NoiseSource<double>::philox(1, 0);
  try {
    layer.forward(Mode::train);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEMPLATE_TEST_CASE("the 1-D/3-D forms match their float64 golden cases", "[ranks][golden]", float, double) {
  const bool simd = GENERATE(true, false);
  for (const char* name : kRankCases) {
    const auto result = replay_case<TestType>(std::string(NORMNORM_TEST_DATA_DIR) + "/golden/" + name, "", Execution{simd ? SimdPath::automatic : SimdPath::scalar});
    INFO((simd ? "simd " : "scalar ") << describe(result, sizeof(TestType) == 4 ? "float" : "double"));
    CHECK(result.tensors.size() >= 8);  // two calls: y, grad_x, grad_weight, grad_bias each
    CHECK(result.pass());
  }
}

TEST_CASE("the new forms' names, defaults and module classes", "[ranks]") {
  CHECK(std::string(form_name(Form::batch_3d)) == "BatchNormalNorm3d");
  CHECK(std::string(form_name(Form::instance_1d)) == "InstanceNormalNorm1d");
  CHECK(std::string(form_name(Form::instance_3d)) == "InstanceNormalNorm3d");
  CHECK(is_batch_form(Form::batch_3d));
  CHECK_FALSE(is_batch_form(Form::instance_1d));
  CHECK_FALSE(is_batch_form(Form::instance_3d));
  // Batch forms default like BatchNormalNorm2d, instance forms like InstanceNormalNorm2d.
  for (Form form : {Form::batch_3d, Form::instance_1d, Form::instance_3d}) {
    const Options o = default_options(form), like = default_options(is_batch_form(form) ? Form::batch_2d : Form::instance_2d);
    CHECK(o.track_running_stats == like.track_running_stats);
    CHECK(o.noise_train == like.noise_train);
  }
  CHECK(default_options(Form::batch_3d).track_running_stats);
  CHECK_FALSE(default_options(Form::instance_3d).track_running_stats);

  BatchNormalNorm3d<float> batch_3d(4);
  InstanceNormalNorm1d<double> instance_1d(3);
  InstanceNormalNorm3d<float> instance_3d(2);
  CHECK(batch_3d.config().form == Form::batch_3d);
  CHECK(batch_3d.running_mean().size == 4);
  CHECK(instance_1d.config().form == Form::instance_1d);
  CHECK(instance_1d.running_mean().size == 0);
  CHECK(instance_3d.config().form == Form::instance_3d);
  CHECK(instance_3d.weight().size() == 2);
}

TEMPLATE_TEST_CASE("BatchNormalNorm1d on (N, C, L) is BatchNormalNorm2d on (N, C, L, 1), bit for bit", "[ranks]", float,
                   double) {
  // Both adapters give the engine the layout (N, C, inner L, one channel per group, over
  // the batch), and the noise is keyed by the same flat index: the same computation.
  for (int order : {1, 2})
    for (bool simd : {true, false}) {
      INFO("order " << order << (simd ? " simd" : " scalar"));
      Harness<TestType> ncl(LayerConfig::batch_normal_norm_1d(3, options_with_order(Form::batch_1d, order)),
                            Shape{4, 3, 9});
      Harness<TestType> nchw(LayerConfig::batch_normal_norm_2d(3, options_with_order(Form::batch_2d, order)),
                             Shape{4, 3, 9, 1});
      ncl.execution.simd_path = nchw.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      require_identical_runs(ncl, nchw);
    }
}

TEMPLATE_TEST_CASE("BatchNormalNorm1d on (N, C, 1) is BatchNormalNorm1d on (N, C), bit for bit", "[ranks]", float, double) {
  // (N, C, 1) has the layout of (N, C) and takes its path (groups as columns).
  Harness<TestType> ncl(LayerConfig::batch_normal_norm_1d(5), Shape{6, 5, 1});
  Harness<TestType> nc(LayerConfig::batch_normal_norm_1d(5), Shape{6, 5});
  require_identical_runs(ncl, nc);
}

TEMPLATE_TEST_CASE("BatchNormalNorm3d is BatchNormalNorm2d on (N, C, D, H*W), bit for bit", "[ranks]", float, double) {
  Harness<TestType> ncdhw(LayerConfig::batch_normal_norm_3d(3), Shape{2, 3, 3, 4, 5});
  Harness<TestType> nchw(LayerConfig::batch_normal_norm_2d(3), Shape{2, 3, 3, 20});
  require_identical_runs(ncdhw, nchw);
}

TEMPLATE_TEST_CASE("InstanceNormalNorm1d/3d are InstanceNormalNorm2d on reshaped data, bit for bit", "[ranks]", float,
                   double) {
  // Per (sample, channel) over every spatial axis: the layout (N, C, inner, 1) either way.
  for (int order : {1, 2}) {
    INFO("order " << order);
    Harness<TestType> ncl(LayerConfig::instance_normal_norm_1d(4, options_with_order(Form::instance_1d, order)),
                          Shape{3, 4, 10});
    Harness<TestType> nc1l(LayerConfig::instance_normal_norm_2d(4, options_with_order(Form::instance_2d, order)),
                           Shape{3, 4, 1, 10});
    require_identical_runs(ncl, nc1l);
    Harness<TestType> ncdhw(LayerConfig::instance_normal_norm_3d(2, options_with_order(Form::instance_3d, order)),
                            Shape{2, 2, 3, 4, 3});
    Harness<TestType> nchw(LayerConfig::instance_normal_norm_2d(2, options_with_order(Form::instance_2d, order)),
                           Shape{2, 2, 12, 3});
    require_identical_runs(ncdhw, nchw);
  }
}

TEMPLATE_TEST_CASE("channels-last-3d (N, D, H, W, C) gives the contiguous results", "[ranks][channels_last]", float,
                   double) {
  const std::vector<FormCase> cases = {
      {LayerConfig::batch_normal_norm_3d(5), Shape{2, 5, 3, 4, 3}},
      {LayerConfig::instance_normal_norm_3d(3), Shape{2, 3, 2, 5, 4}},
  };
  for (const FormCase& fc : cases)
    for (bool simd : {true, false}) {
      INFO(fc.config.name() << (simd ? " simd" : " scalar"));
      Harness<TestType> contiguous(fc.config, fc.shape), last(fc.config, fc.shape);
      contiguous.randomize(5);
      last.weight = contiguous.weight, last.bias = contiguous.bias;
      last.x = to_channels_last(contiguous.x, fc.shape);
      last.grad_out = to_channels_last(contiguous.grad_out, fc.shape);
      last.memory_format = MemoryFormat::channels_last;
      contiguous.execution.simd_path = last.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
      contiguous.noise = last.noise = NoiseSource<TestType>::philox(9, 2);  // keyed by the logical index
      for (Mode mode : {Mode::train, Mode::train, Mode::eval}) {
        contiguous.forward(mode);
        last.forward(mode);
        contiguous.backward();
        last.backward();
        const auto want = to_channels_last(contiguous.out, fc.shape), want_grad = to_channels_last(contiguous.grad_x, fc.shape);
        if (mode == Mode::train || !fc.config.has_running_stats()) {
          // A transposed copy through the same engine: exact.
          CHECK(last.out == want);
          CHECK(last.grad_x == want_grad);
        } else {
          // Evaluation with running statistics maps channels-last rows in place, lanes across
          // channels: different values take the SIMD lanes and the scalar tail, a few ulps apart.
          const double tol = sizeof(TestType) == 4 ? 1e-6 : 1e-14;
          for (std::size_t i = 0; i < want.size(); ++i) {
            REQUIRE(std::abs(double(last.out[i]) - double(want[i])) <= tol * (1 + std::abs(double(want[i]))));
            REQUIRE(std::abs(double(last.grad_x[i]) - double(want_grad[i])) <= tol * (1 + std::abs(double(want_grad[i]))));
          }
        }
        CHECK(last.grad_weight == contiguous.grad_weight);
        CHECK(last.grad_bias == contiguous.grad_bias);
        CHECK(last.running_mean == contiguous.running_mean);
        CHECK(last.running_var == contiguous.running_var);
        CHECK(last.running_lambda == contiguous.running_lambda);
        CHECK(last.running_norm == contiguous.running_norm);
      }
    }
}

TEST_CASE("finite-difference gradients of the 1-D/3-D forms", "[ranks][gradcheck]") {
  int checked = 0;
  for (int order : {1, 2})
    for (bool affine : {true, false})
      for (Mode mode : {Mode::train, Mode::eval}) {
        auto with = [&](Form form) {
          Options o = default_options(form);
          o.order = order, o.affine = affine, o.noise_train = 0;
          o.alpha = order == 1 ? 0.5 : 1.0;
          return o;
        };
        const std::vector<FormCase> cases = {
            {LayerConfig::batch_normal_norm_1d(2, with(Form::batch_1d)), Shape{3, 2, 4}},
            {LayerConfig::batch_normal_norm_3d(2, with(Form::batch_3d)), Shape{2, 2, 2, 2, 3}},
            {LayerConfig::instance_normal_norm_1d(3, with(Form::instance_1d)), Shape{2, 3, 5}},
            {LayerConfig::instance_normal_norm_3d(2, with(Form::instance_3d)), Shape{2, 2, 2, 3, 2}},
        };
        for (const FormCase& fc : cases) {
          INFO(fc.config.name() << " " << fc.shape.to_string() << " order " << order << " affine " << affine << " "
                                << (mode == Mode::train ? "train" : "eval"));
          Harness<double> layer(fc.config, fc.shape);
          layer.randomize(200 + static_cast<unsigned>(checked), 0.5);
          gradcheck(layer, mode);
          ++checked;
        }
      }
  CHECK(checked == 2 * 2 * 2 * 4);
}

TEST_CASE("wrong ranks are refused, naming the expected shape", "[ranks][validation]") {
  using Catch::Contains;
  const LayerConfig batch_1d = LayerConfig::batch_normal_norm_1d(3), batch_3d = LayerConfig::batch_normal_norm_3d(3),
                    instance_1d = LayerConfig::instance_normal_norm_1d(3),
                    instance_3d = LayerConfig::instance_normal_norm_3d(3);
  CHECK_THAT(forward_error(batch_1d, Shape{2, 3, 4, 5}), Contains("expected 2-D input (N, 3) or 3-D input (N, 3, L)"));
  CHECK_THAT(forward_error(batch_1d, Shape{6}), Contains("BatchNormalNorm1d"));
  CHECK_THAT(forward_error(batch_1d, Shape{2, 4, 5}), Contains("expected 3 channels on axis 1"));
  CHECK_THAT(forward_error(batch_3d, Shape{2, 3, 4, 5}), Contains("expected 5-D input (N, 3, D, H, W)"));
  CHECK_THAT(forward_error(batch_3d, Shape{2, 3, 4, 5, 1, 1}), Contains("BatchNormalNorm3d: expected 5-D input"));
  CHECK_THAT(forward_error(instance_1d, Shape{2, 3}), Contains("InstanceNormalNorm1d: expected 3-D input (N, 3, L)"));
  CHECK_THAT(forward_error(instance_1d, Shape{2, 3, 4, 5}), Contains("expected 3-D input (N, 3, L)"));
  CHECK_THAT(forward_error(instance_3d, Shape{2, 3, 4, 5}), Contains("InstanceNormalNorm3d: expected 5-D input (N, 3, D, H, W)"));
  CHECK_THAT(forward_error(instance_3d, Shape{2, 4, 2, 2, 2}), Contains("expected 3 channels on axis 1"));
  // The shapes that fit are accepted (the helper returns no message).
  CHECK(forward_error(batch_1d, Shape{2, 3, 4}).empty());
  CHECK(forward_error(batch_3d, Shape{2, 3, 2, 2, 2}).empty());
  CHECK(forward_error(instance_3d, Shape{1, 3, 2, 2, 2}).empty());
  // channels_last exists in PyTorch for 4-D and 5-D tensors: not for the 1-D forms' (N, C, L).
  CHECK_THAT(forward_error(batch_1d, Shape{2, 3, 4}, MemoryFormat::channels_last), Contains("channels_last needs"));
  CHECK_THAT(forward_error(instance_1d, Shape{2, 3, 4}, MemoryFormat::channels_last), Contains("channels_last needs"));
  CHECK(forward_error(instance_3d, Shape{1, 3, 2, 2, 2}, MemoryFormat::channels_last).empty());
  // The modules refuse the same way.
  InstanceNormalNorm3d<float> module(3);
  std::vector<float> x(24, 1.0f), y(24);
  CHECK_THROWS_AS(module.forward(x.data(), Shape{2, 3, 4}, y.data()), std::invalid_argument);
}

TEMPLATE_TEST_CASE("infer equals forward in evaluation for the new modules, bit for bit", "[ranks][infer]", float, double) {
  // The polynomial map too: the forward and the prepared cache take the same tables.
  const EvaluationMap map = GENERATE(EvaluationMap::exact, EvaluationMap::polynomial);
  Harness<TestType> data(LayerConfig::batch_normal_norm_3d(3), Shape{2, 3, 2, 3, 4});
  data.randomize(3);
  Options options = default_options(Form::batch_3d);
  options.evaluation_map = map;
  BatchNormalNorm3d<TestType> batch_3d(3, options);
  BatchNormalNorm1d<TestType> batch_1d(3, options);
  InstanceNormalNorm3d<TestType> instance_3d(3);
  InstanceNormalNorm1d<TestType> instance_1d(3);
  std::vector<TestType> y(data.x.size()), forward_y(data.x.size()), infer_y(data.x.size());
  auto check_module = [&](NormalNormModule<TestType>& module, const Shape& shape) {
    INFO(module.config().name() << " " << shape.to_string());
    module.train();
    module.forward(data.x.data(), shape, y.data());  // moves the running statistics off their start
    module.eval();
    module.forward(data.x.data(), shape, forward_y.data());
    module.infer(data.x.data(), shape, infer_y.data());
    CHECK(infer_y == forward_y);
  };
  check_module(batch_3d, Shape{2, 3, 2, 3, 4});
  check_module(batch_1d, Shape{2, 3, 24});
  check_module(instance_3d, Shape{2, 3, 2, 3, 4});
  check_module(instance_1d, Shape{2, 3, 24});
}

TEST_CASE("channels-last-3d golden cases: the contiguous golden vectors, transposed", "[ranks][channels_last][golden]") {
  for (const char* name : {"bn3d_3x2x3x4x5", "in3d_2x3x3x4x5"}) {
    INFO(name);
    const std::string dir = std::string(NORMNORM_TEST_DATA_DIR) + "/golden/" + name + "/";
    const LayerConfig config = config_from_case(read_case_json(dir));
    std::vector<std::int64_t> dims;
    const auto x = io::read_npy_as<double>(dir + "step0_x.npy", &dims);
    const Shape shape(dims.data(), static_cast<int>(dims.size()));
    REQUIRE(shape.rank() == 5);
    Harness<double> layer(config, shape);
    layer.weight = io::read_npy_as<double>(dir + "weight.npy");
    layer.bias = io::read_npy_as<double>(dir + "bias.npy");
    layer.memory_format = MemoryFormat::channels_last;
    layer.x = to_channels_last(x, shape);
    layer.grad_out = to_channels_last(io::read_npy_as<double>(dir + "step0_grad_y.npy"), shape);
    layer.forward(Mode::train);
    layer.backward();
    const auto tol = tolerance_for<double>();
    CHECK(compare("y", layer.out, to_channels_last(io::read_npy_as<double>(dir + "step0_y.npy"), shape), tol).pass);
    CHECK(compare("grad_x", layer.grad_x, to_channels_last(io::read_npy_as<double>(dir + "step0_grad_x.npy"), shape), tol).pass);
    CHECK(compare("grad_weight", layer.grad_weight, io::read_npy(dir + "step0_grad_weight.npy").data, tol).pass);
  }
}

TEST_CASE("Eigen functors and module tensors take rank-5 input, channels-last in (N, D, H, W, C) order", "[ranks][eigen]") {
  namespace ne = normnorm::eigen;
  const LayerConfig config = LayerConfig::batch_normal_norm_3d(3);
  const Shape shape{2, 3, 2, 4, 5};
  Harness<float> reference(config, shape);
  reference.randomize(4);
  reference.noise = NoiseSource<float>::philox(6, 1);
  reference.forward(Mode::train);
  const auto x_last = to_channels_last(reference.x, shape);
  std::vector<float> out(x_last.size());
  std::vector<float> mean(3, 0.f), var(3, 1.f), lambda(3, 1.f), norm(3, float(std::sqrt(2.0 / M_PI)));
  std::int64_t batches = 0;
  SavedContext<float> context;
  ne::Forward<float> forward{config};
  forward.memory_format = MemoryFormat::channels_last;
  forward(Mode::train, ne::ConstTensorMap<float, 5>(x_last.data(), 2, 2, 4, 5, 3), ne::TensorMap<float, 5>(out.data(), 2, 2, 4, 5, 3),
          ne::AffineMaps<float>(ne::ConstVectorMap<float>(reference.weight.data(), 3), ne::ConstVectorMap<float>(reference.bias.data(), 3)),
          RunningStats<float>{mean.data(), var.data(), lambda.data(), norm.data(), &batches, 3}, reference.noise, context);
  CHECK(out == to_channels_last(reference.out, shape));
  CHECK(context.shape == shape);  // the logical (N, C, D, H, W)
  CHECK(mean == reference.running_mean);

  // A module's Eigen::Tensor overload, rank 5, contiguous: the raw-pointer result.
  InstanceNormalNorm3d<double> module(3);
  module.eval();
  Eigen::Tensor<double, 5, Eigen::RowMajor> input(2, 3, 2, 4, 5);
  Harness<double> raw(module.config(), shape);
  raw.randomize(8);
  raw.weight.assign(3, 1.0), raw.bias.assign(3, 0.0);  // the module's parameters
  std::copy(raw.x.begin(), raw.x.end(), input.data());
  const Eigen::Tensor<double, 5, Eigen::RowMajor> output = module.forward(input);
  raw.forward(Mode::eval);
  CHECK(std::vector<double>(output.data(), output.data() + output.size()) == raw.out);
}
