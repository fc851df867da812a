#pragma once
// Loading a BatchNormalNorm2d that was trained in PyTorch and exported with numpy.save,
// and running it in evaluation mode. Shared by normnorm_inference (main.cpp) and
// tests/test_inference_example.cpp.
//
// The export, on the PyTorch side, is one .npy file per state_dict entry:
//
//   for name, tensor in layer.state_dict().items():
//       numpy.save(f"{model_dir}/{name}.npy", tensor.detach().cpu().numpy())
//
// so MODEL_DIR holds weight.npy, bias.npy, running_mean.npy, running_var.npy,
// running_lmbda.npy and running_norm.npy, each of length C (num_batches_tracked.npy may be
// there too; evaluation does not read it). The paper's code spells lambda "lmbda"; normnorm
// calls the same buffer running_lambda().

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace normnorm_example {

// A row-major array and its shape, as read from or written to a .npy file.
template <class T>
struct Array {
  std::vector<T> values;
  std::vector<std::int64_t> shape;
};

template <class T>
Array<T> read_array(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("missing file " + path.string());
  Array<T> array;
  array.values = normnorm::io::read_npy_as<T>(path.string(), &array.shape);
  return array;
}

// Reads MODEL_DIR/<name>.npy and checks that it holds exactly `channels` values (a 1-D
// array; channels < 0 accepts any length, for the first file, which fixes C).
template <class T>
std::vector<T> read_per_channel(const std::filesystem::path& model_dir, const std::string& name,
                                std::int64_t channels) {
  const std::filesystem::path path = model_dir / (name + ".npy");
  Array<T> array = read_array<T>(path);
  if (array.shape.size() != 1 || (channels >= 0 && array.shape[0] != channels))
    throw std::runtime_error(path.string() + ": expected a 1-D array of " +
                             (channels >= 0 ? std::to_string(channels) : std::string("C")) +
                             " values (one per channel), got " +
                             normnorm::Shape(array.shape.data(), static_cast<int>(array.shape.size())).to_string());
  return std::move(array.values);
}

// The layer, in evaluation mode, with its parameters and running statistics from
// model_dir. `options` must match the exported layer's constructor arguments; only eps
// and affine matter in evaluation (the paper's defaults: eps 1e-5, affine).
template <class T>
normnorm::BatchNormalNorm2d<T> load_batch_normal_norm_2d(
    const std::filesystem::path& model_dir,
    const normnorm::Options& options = normnorm::default_options(normnorm::Form::batch_2d)) {
  std::vector<T> weight = read_per_channel<T>(model_dir, "weight", -1);
  const auto channels = static_cast<std::int64_t>(weight.size());

  normnorm::BatchNormalNorm2d<T> layer(channels, options);
  layer.weight() = std::move(weight);
  layer.bias() = read_per_channel<T>(model_dir, "bias", channels);
  // The running statistics are spans of the layer's own buffers: copy into them.
  auto assign = [&](normnorm::Span<T> to, const char* stem) {
    const std::vector<T> values = read_per_channel<T>(model_dir, stem, channels);
    std::copy(values.begin(), values.end(), to.begin());
  };
  assign(layer.running_mean(), "running_mean");
  assign(layer.running_var(), "running_var");
  assign(layer.running_lambda(), "running_lmbda");
  assign(layer.running_norm(), "running_norm");
  layer.eval();
  return layer;
}

// layer(input) in evaluation mode: running statistics, no noise. The layer checks that
// the input is 4-D (N, C, H, W) with C channels and throws std::invalid_argument if not.
template <class T>
Array<T> evaluate(normnorm::BatchNormalNorm2d<T>& layer, const Array<T>& input) {
  if (input.shape.size() > static_cast<std::size_t>(normnorm::Shape::max_rank))
    throw std::invalid_argument("input has " + std::to_string(input.shape.size()) + " axes; expected 4 (N, C, H, W)");
  const normnorm::Shape shape(input.shape.data(), static_cast<int>(input.shape.size()));
  Array<T> output;
  output.shape = input.shape;
  output.values.resize(input.values.size());
  layer.eval();
  layer.forward(input.values.data(), shape, output.values.data());
  return output;
}

}  // namespace normnorm_example
