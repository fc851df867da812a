// Channels-last (N, H, W, C) input of the batch 2d, instance and group forms
// gives exactly the contiguous (N, C, H, W) results: outputs, gradients,
// running statistics and noise (keyed by the logical (N, C, H, W) index).

#include <catch2/catch.hpp>

#include "conformance/golden_case.hpp"
#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

template <class T>
void check_same_as_contiguous(const FormCase& fc, NoiseKind noise_kind, bool simd) {
  Harness<T> contiguous(fc.config, fc.shape), channels_last(fc.config, fc.shape);
  contiguous.randomize(12);
  channels_last.randomize(12);
  contiguous.execution.simd_path = channels_last.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
  std::vector<T> normals(contiguous.x.size());
  noise::fill_standard_normals<T>(4, 4, 0, normals.size(), normals.data());
  const std::vector<T> normals_last = to_channels_last(normals, fc.shape);
  if (noise_kind == NoiseKind::philox) {
    contiguous.noise = channels_last.noise = NoiseSource<T>::philox(4, 4);
  } else {
    contiguous.noise = NoiseSource<T>::external(normals.data());
    channels_last.noise = NoiseSource<T>::external(normals_last.data());
  }
  channels_last.memory_format = MemoryFormat::channels_last;
  channels_last.x = to_channels_last(contiguous.x, fc.shape);
  channels_last.grad_out = to_channels_last(contiguous.grad_out, fc.shape);
  for (Mode mode : {Mode::train, Mode::train, Mode::eval}) {
    contiguous.forward(mode);
    channels_last.forward(mode);
    contiguous.backward();
    channels_last.backward();
    const bool fixed_map = mode == Mode::eval && fc.config.has_running_stats();
    if (!fixed_map) {
      CHECK(channels_last.out == to_channels_last(contiguous.out, fc.shape));
      CHECK(channels_last.grad_x == to_channels_last(contiguous.grad_x, fc.shape));
    } else {
      // Evaluation with running statistics maps channels-last rows directly (no transposed
      // copy), so which values take the SIMD lanes and which the scalar tail differs: equal
      // to within a few ulps.
      const double tol = sizeof(T) == 4 ? 1e-6 : 1e-14;
      const auto want = to_channels_last(contiguous.out, fc.shape);
      for (std::size_t i = 0; i < want.size(); ++i)
        REQUIRE(std::abs(double(channels_last.out[i]) - double(want[i])) <= tol * (1 + std::abs(double(want[i]))));
      const auto want_grad = to_channels_last(contiguous.grad_x, fc.shape);
      for (std::size_t i = 0; i < want_grad.size(); ++i)
        REQUIRE(std::abs(double(channels_last.grad_x[i]) - double(want_grad[i])) <= tol * (1 + std::abs(double(want_grad[i]))));
    }
    CHECK(channels_last.grad_weight == contiguous.grad_weight);
    CHECK(channels_last.grad_bias == contiguous.grad_bias);
    CHECK(channels_last.running_mean == contiguous.running_mean);
    CHECK(channels_last.running_lambda == contiguous.running_lambda);
    CHECK(channels_last.running_norm == contiguous.running_norm);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("channels-last gives exactly the contiguous results", "[channels_last]", float, double) {
  const std::vector<FormCase> cases = {
      {LayerConfig::batch_normal_norm_2d(5, default_options(Form::batch_2d)), Shape{3, 5, 4, 7}},
      {LayerConfig::instance_normal_norm_2d(4, default_options(Form::instance_2d)), Shape{2, 4, 6, 5}},
      {LayerConfig::group_normal_norm(3, 6, default_options(Form::group)), Shape{2, 6, 5, 3}},
      {LayerConfig::group_normal_norm(2, 4, default_options(Form::group)), Shape{3, 4, 9}},  // (N, C, L)
  };
  for (const FormCase& fc : cases)
    for (NoiseKind kind : {NoiseKind::philox, NoiseKind::external})
      for (bool simd : {true, false}) {
        INFO(fc.config.name() << " " << fc.shape.to_string() << (kind == NoiseKind::philox ? " philox" : " external")
                              << (simd ? " simd" : " scalar"));
        check_same_as_contiguous<TestType>(fc, kind, simd);
      }
}

TEST_CASE("channels-last golden cases: the contiguous golden vectors, transposed", "[channels_last][golden]") {
  for (const char* name : {"bn2d_4x3x5x6", "in2d_3x4x6x5", "gn_4x6x5x5_g3"}) {
    INFO(name);
    const std::string dir = std::string(NORMNORM_TEST_DATA_DIR) + "/golden/" + name + "/";
    const LayerConfig config = config_from_case(read_case_json(dir));
    std::vector<std::int64_t> dims;
    const auto x = io::read_npy_as<double>(dir + "step0_x.npy", &dims);
    const Shape shape(dims.data(), static_cast<int>(dims.size()));
    Harness<double> layer(config, shape);
    layer.weight = io::read_npy_as<double>(dir + "weight.npy");
    layer.bias = io::read_npy_as<double>(dir + "bias.npy");
    layer.memory_format = MemoryFormat::channels_last;
    layer.x = to_channels_last(x, shape);
    layer.grad_out = to_channels_last(io::read_npy_as<double>(dir + "step0_grad_y.npy"), shape);
    layer.forward(Mode::train);
    layer.backward();
    const auto want_y = to_channels_last(io::read_npy_as<double>(dir + "step0_y.npy"), shape);
    const auto want_grad_x = to_channels_last(io::read_npy_as<double>(dir + "step0_grad_x.npy"), shape);
    CHECK(compare("y", layer.out, want_y, tolerance_for<double>()).pass);
    CHECK(compare("grad_x", layer.grad_x, want_grad_x, tolerance_for<double>()).pass);
    CHECK(compare("grad_weight", layer.grad_weight, io::read_npy(dir + "step0_grad_weight.npy").data, tolerance_for<double>()).pass);
  }
}

TEST_CASE("channels_last is refused where it has no meaning", "[channels_last][validation]") {
  Harness<float> layer(LayerConfig::layer_normal_norm(Shape{4}), Shape{3, 4});
  layer.memory_format = MemoryFormat::channels_last;
  layer.noise = NoiseSource<float>::philox(1, 1);
  CHECK_THROWS_WITH(layer.forward(Mode::train), Catch::Contains("channels_last"));
}

TEST_CASE("Eigen functors take channels-last maps in (N, H, W, C) order", "[channels_last]") {
  namespace ne = normnorm::eigen;
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3, default_options(Form::batch_2d));
  Harness<float> reference(config, Shape{2, 3, 4, 5});
  reference.randomize(2);
  reference.noise = NoiseSource<float>::philox(6, 1);
  reference.forward(Mode::train);
  const auto x_last = to_channels_last(reference.x, reference.shape);
  std::vector<float> out(x_last.size());
  std::vector<float> mean(3, 0.f), var(3, 1.f), lambda(3, 1.f), norm(3, float(std::sqrt(2.0 / M_PI)));
  std::int64_t batches = 0;
  SavedContext<float> context;
  ne::Forward<float> forward{config};
  forward.memory_format = MemoryFormat::channels_last;
  forward(Mode::train, ne::ConstTensorMap<float, 4>(x_last.data(), 2, 4, 5, 3), ne::TensorMap<float, 4>(out.data(), 2, 4, 5, 3),
          ne::AffineMaps<float>(ne::ConstVectorMap<float>(reference.weight.data(), 3), ne::ConstVectorMap<float>(reference.bias.data(), 3)),
          RunningStats<float>{mean.data(), var.data(), lambda.data(), norm.data(), &batches, 3}, reference.noise, context);
  CHECK(out == to_channels_last(reference.out, reference.shape));
  CHECK(context.shape == Shape{2, 3, 4, 5});
}
