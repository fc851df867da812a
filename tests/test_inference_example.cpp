// The inference example's loading and evaluation code (examples/inference/load_layer.hpp)
// on the exported layer in tests/data/inference/, checked against the output the paper's
// PyTorch code computed in float64.

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include "../examples/inference/load_layer.hpp"

namespace {

const std::filesystem::path inference_dir = std::filesystem::path(NORMNORM_TEST_DATA_DIR) / "inference";

// A fresh name under the temp directory: the baseline and native test binaries run these
// cases at the same time under ctest -j, so fixed names would collide.
std::filesystem::path unique_temp_path(const std::string& stem) {
  std::random_device device;
  return std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(device()) + std::to_string(device()));
}

template <class T>
double tolerance_for() {
  return sizeof(T) == sizeof(double) ? 1e-9 : 1e-5;
}

}  // namespace

TEMPLATE_TEST_CASE("inference example: exported BatchNormalNorm2d matches PyTorch in eval", "[inference_example]",
                   float, double) {
  auto layer = normnorm_example::load_batch_normal_norm_2d<TestType>(inference_dir);
  REQUIRE(layer.weight().size() == 3);
  REQUIRE_FALSE(layer.is_training());

  const auto input = normnorm_example::read_array<TestType>(inference_dir / "input.npy");
  const auto expected = normnorm_example::read_array<double>(inference_dir / "expected_output.npy");
  REQUIRE(input.shape == std::vector<std::int64_t>{4, 3, 5, 6});

  const auto output = normnorm_example::evaluate(layer, input);
  REQUIRE(output.shape == expected.shape);
  REQUIRE(output.values.size() == expected.values.size());

  double worst = 0;
  for (std::size_t i = 0; i < output.values.size(); ++i)
    worst = std::fmax(worst, std::fabs(static_cast<double>(output.values[i]) - expected.values[i]));
  INFO("max |output - expected| = " << worst);
  CHECK(worst <= tolerance_for<TestType>());

  // Evaluation leaves the loaded running statistics as they were.
  const auto lambda = normnorm_example::read_array<TestType>(inference_dir / "running_lmbda.npy");
  const auto running_lambda = layer.running_lambda();
  CHECK(std::vector<TestType>(running_lambda.begin(), running_lambda.end()) == lambda.values);
}

TEST_CASE("inference example: a written output reads back unchanged", "[inference_example]") {
  auto layer = normnorm_example::load_batch_normal_norm_2d<float>(inference_dir);
  const auto input = normnorm_example::read_array<float>(inference_dir / "input.npy");
  const auto output = normnorm_example::evaluate(layer, input);

  const auto path = unique_temp_path("normnorm_test_inference_output");
  normnorm::io::write_npy<float>(path.string(), output.values.data(), output.shape);
  const auto back = normnorm_example::read_array<float>(path);
  std::filesystem::remove(path);
  CHECK(back.shape == output.shape);
  CHECK(back.values == output.values);
}

TEST_CASE("inference example: bad model directories are clear errors", "[inference_example]") {
  const auto scratch = unique_temp_path("normnorm_test_inference_bad_model");
  std::filesystem::remove_all(scratch);
  std::filesystem::create_directories(scratch);

  SECTION("a missing file is named") {
    CHECK_THROWS_WITH(normnorm_example::load_batch_normal_norm_2d<double>(scratch),
                      Catch::Matchers::Contains("missing file") && Catch::Matchers::Contains("weight.npy"));
  }
  SECTION("a statistic of the wrong length is named, with the expected length") {
    for (const char* name : {"weight", "bias", "running_mean", "running_var", "running_lmbda", "running_norm"})
      std::filesystem::copy_file(inference_dir / (std::string(name) + ".npy"), scratch / (std::string(name) + ".npy"));
    const double two[2] = {1.0, 2.0};
    normnorm::io::write_npy<double>((scratch / "running_var.npy").string(), two, {2});
    CHECK_THROWS_WITH(normnorm_example::load_batch_normal_norm_2d<double>(scratch),
                      Catch::Matchers::Contains("running_var.npy") && Catch::Matchers::Contains("3 values"));
  }
  SECTION("an input with the wrong channel count is rejected by the layer") {
    auto layer = normnorm_example::load_batch_normal_norm_2d<double>(inference_dir);
    normnorm_example::Array<double> input;
    input.shape = {2, 4, 1, 1};
    input.values.assign(8, 0.5);
    CHECK_THROWS_AS(normnorm_example::evaluate(layer, input), std::invalid_argument);
  }
  std::filesystem::remove_all(scratch);
}
