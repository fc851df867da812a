// normnorm inference example: run a BatchNormalNorm2d exported from PyTorch.
//
//   normnorm_inference MODEL_DIR INPUT.npy OUTPUT.npy [--double]
//
// MODEL_DIR holds the layer's state_dict as .npy files (weight, bias, running_mean,
// running_var, running_lmbda, running_norm; see load_layer.hpp). INPUT.npy is an
// (N, C, H, W) array of any float or integer dtype. OUTPUT.npy gets the layer's output in
// evaluation mode, as float32 ('<f4'), or float64 ('<f8') with --double.
// tests/data/inference/ holds a small exported layer to try it on.

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "load_layer.hpp"

namespace {

template <class T>
void run(const char* model_dir, const char* input_path, const char* output_path) {
  normnorm::BatchNormalNorm2d<T> layer = normnorm_example::load_batch_normal_norm_2d<T>(model_dir);
  const auto input = normnorm_example::read_array<T>(input_path);
  const auto output = normnorm_example::evaluate(layer, input);
  normnorm::io::write_npy<T>(output_path, output.values.data(), output.shape);

  const normnorm::Shape shape(output.shape.data(), static_cast<int>(output.shape.size()));
  std::printf("%s (%zu channels, %s) on %s %s -> %s\n", layer.config().name(), layer.weight().size(),
              sizeof(T) == 4 ? "float32" : "float64", input_path, shape.to_string().c_str(), output_path);
  std::printf("running lambda per channel:");
  for (T lambda : layer.running_lambda()) std::printf(" %.4f", static_cast<double>(lambda));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool use_double = false;
  const char* paths[3] = {nullptr, nullptr, nullptr};
  int count = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--double") == 0) {
      use_double = true;
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      count = -1;
      break;
    } else if (count < 3) {
      paths[count++] = argv[i];
    } else {
      count = 4;
    }
  }
  if (count != 3) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR INPUT.npy OUTPUT.npy [--double]\n"
                 "  MODEL_DIR: weight.npy bias.npy running_mean.npy running_var.npy running_lmbda.npy\n"
                 "             running_norm.npy of one BatchNormalNorm2d (numpy.save of its state_dict)\n"
                 "  INPUT.npy: (N, C, H, W); OUTPUT.npy is written as float32, or float64 with --double\n",
                 argv[0]);
    return count == -1 ? 0 : 2;
  }
  try {
    if (use_double)
      run<double>(paths[0], paths[1], paths[2]);
    else
      run<float>(paths[0], paths[1], paths[2]);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "normnorm_inference: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
