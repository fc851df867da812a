// normnorm inference example: a whole model's normalization state in one file.
//
//   normnorm_load_model STATE_DICT [STATE_DICT ...]
//
// Each STATE_DICT is a .npz or .safetensors file written by tools/export_state_dict.py
// from a PyTorch model's state_dict(). The model here has one normalization module of
// each form (as tests/data/state_dict/make_state_dict.py builds it):
//
//   features.0     BatchNormalNorm2d(3)            classifier.1  BatchNormalNorm1d(5)
//   features.2     GroupNormalNorm(2, 4)           encoder.norm  LayerNormalNorm((2, 3))
//   style          InstanceNormalNorm2d(3, affine)
//
// Each module is loaded with ONE call, load_state_dict(module, dict, prefix) (strict:
// every missing, unexpected, misshapen or non-finite entry is reported at once), and
// then run in evaluation mode on a fixed input. With several files, the outputs must be
// identical across them (the same model exported twice); the program says so or fails.

#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <normnorm/io/io.hpp>

namespace {

struct Part {
  const char* prefix;
  std::unique_ptr<normnorm::NormalNormModule<float>> module;
  normnorm::Shape input_shape;
};

std::vector<Part> make_model() {
  normnorm::Options instance = normnorm::default_options(normnorm::Form::instance_2d);
  instance.affine = true;
  std::vector<Part> parts;
  parts.push_back({"features.0", std::make_unique<normnorm::BatchNormalNorm2d<float>>(3), {2, 3, 4, 5}});
  parts.push_back({"features.2", std::make_unique<normnorm::GroupNormalNorm<float>>(2, 4), {2, 4, 3, 3}});
  parts.push_back({"classifier.1", std::make_unique<normnorm::BatchNormalNorm1d<float>>(5), {6, 5}});
  parts.push_back({"encoder.norm", std::make_unique<normnorm::LayerNormalNorm<float>>(normnorm::Shape{2, 3}), {4, 2, 3}});
  parts.push_back({"style", std::make_unique<normnorm::InstanceNormalNorm2d<float>>(3, instance), {2, 3, 4, 4}});
  return parts;
}

// Every module's output on a fixed input, concatenated.
std::vector<float> run_model(const std::string& path) {
  const normnorm::io::StateDict dict = normnorm::io::read_state_dict(path);
  std::vector<Part> model = make_model();
  std::vector<float> outputs;
  for (Part& part : model) {
    normnorm::io::load_state_dict(*part.module, dict, part.prefix);
    part.module->eval();
    std::size_t n = 1;
    for (normnorm::index_t d : part.input_shape) n *= static_cast<std::size_t>(d);
    std::vector<float> x(n), y(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.25f * static_cast<float>(i % 7);
    part.module->forward(x.data(), part.input_shape, y.data());
    double sum = 0;
    for (float v : y) sum += static_cast<double>(v);
    std::printf("  %-13s %-20s %-14s mean output %+.6f\n", part.prefix, part.module->config().name(),
                part.input_shape.to_string().c_str(), sum / static_cast<double>(n));
    outputs.insert(outputs.end(), y.begin(), y.end());
  }
  return outputs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s STATE_DICT.{npz,safetensors} [...]\n", argv[0]);
    return 2;
  }
  try {
    std::vector<float> first;
    for (int i = 1; i < argc; ++i) {
      std::printf("%s:\n", argv[i]);
      const std::vector<float> outputs = run_model(argv[i]);
      if (i == 1) {
        first = outputs;
      } else if (outputs != first) {
        std::fprintf(stderr, "error: %s gives different outputs than %s\n", argv[i], argv[1]);
        return 1;
      }
    }
    if (argc > 2) std::printf("identical outputs from all %d files\n", argc - 1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
