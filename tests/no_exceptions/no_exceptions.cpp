// Built with -fno-exceptions: normnorm's headers compile without exceptions, and
// try_forward / try_backward report every kind of error as a Status, writing
// nothing. (Catch2 needs exceptions, so this is a plain program: exit code 0 = pass.)

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <normnorm/normnorm.hpp>

#if NORMNORM_EXCEPTIONS
#error "this test must be compiled with -fno-exceptions"
#endif

namespace nn = normnorm;

static int failures = 0;

static void expect(bool condition, const char* what) {
  if (!condition) {
    std::printf("FAIL: %s\n", what);
    ++failures;
  }
}

static void expect_error(const nn::Status& status, nn::ErrorKind kind, const char* needle, const char* what) {
  expect(!status.ok(), what);
  expect(status.kind() == kind, what);
  expect(std::strstr(status.message().c_str(), needle) != nullptr, what);
  std::printf("%-44s -> %s\n", what, status.message().c_str());
}

static void check_io();  // the io block at the end of this file

int main() {
  const nn::index_t n = 8, c = 3;
  nn::Options options = nn::default_options(nn::Form::batch_1d);
  options.noise_train = 0;
  const nn::LayerConfig config = nn::LayerConfig::batch_normal_norm_1d(c, options);
  std::vector<float> x(n * c), out(n * c, -1.0f), weight(c, 1.0f), bias(c, 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * float(i)) + 0.1f * float(i % 5);
  std::vector<float> running_mean(c, 0.0f), running_var(c, 1.0f), running_lambda(c, 1.0f), running_norm(c, 1.0f);
  std::int64_t batches = 0;

  nn::ForwardArgs<float> args;
  args.input = x.data();
  args.shape = nn::Shape{n, c};
  args.output = out.data();
  args.weight = {weight.data(), c};
  args.bias = {bias.data(), c};
  args.running = nn::RunningStats<float>{running_mean.data(), running_var.data(), running_lambda.data(),
                                         running_norm.data(), &batches, c};
  nn::SavedContext<float> context;

  // invalid_argument: a wrong shape; nothing written.
  nn::ForwardArgs<float> wrong = args;
  wrong.shape = nn::Shape{n, c + 1};
  expect_error(nn::try_forward(config, nn::Mode::train, wrong, context), nn::ErrorKind::invalid_argument,
               "channels", "wrong channel count");
  expect(out[0] == -1.0f && batches == 0, "nothing written after a shape error");

  // invalid_argument: nonsense options.
  nn::LayerConfig bad = config;
  bad.options.momentum = 2.0;
  expect_error(nn::try_forward(bad, nn::Mode::train, args, context), nn::ErrorKind::invalid_argument, "momentum",
               "momentum outside [0, 1]");

  // domain_error: NaN in a training group; running statistics untouched.
  std::vector<float> poisoned = x;
  poisoned[4] = std::nanf("");
  nn::ForwardArgs<float> nan_args = args;
  nan_args.input = poisoned.data();
  expect_error(nn::try_forward(config, nn::Mode::train, nan_args, context), nn::ErrorKind::domain_error, "NaN",
               "NaN in a training group");
  expect(out[0] == -1.0f && batches == 0 && running_mean[1] == 0.0f, "nothing written after a domain error");

  // Success, then backward: errors and success.
  nn::Status status = nn::try_forward(config, nn::Mode::train, args, context);
  expect(status.ok() && status.message().empty(), "a good training forward succeeds");
  expect(batches == 1 && std::isfinite(out[0]) && out[0] != -1.0f, "the good forward wrote its results");

  std::vector<float> grad_out(n * c, 0.5f), grad_x(n * c, 0.0f), grad_w(c), grad_b(c);
  nn::BackwardArgs<float> back;
  back.input = x.data();
  back.shape = args.shape;
  back.grad_output = grad_out.data();
  back.weight = {weight.data(), c};
  back.grad_input = grad_x.data();
  back.grad_weight = grad_w.data();
  back.grad_bias = grad_b.data();
  nn::BackwardArgs<float> null_grad = back;
  null_grad.grad_output = nullptr;
  expect_error(nn::try_backward(config, null_grad, context), nn::ErrorKind::invalid_argument, "grad_output is null",
               "backward without grad_output");
  status = nn::try_backward(config, back, context);
  expect(status.ok(), "a good backward succeeds");
  expect(std::abs(grad_b[0] - 0.5f * float(n)) < 1e-5f, "grad_bias = sum of grad_output");

  // Modules: a bad config is kept as the module's status (no abort), and every try_
  // call returns it; a good module reports a wrong shape as a Status.
  nn::Options bad_options = nn::default_options(nn::Form::batch_2d);
  bad_options.eps = -1;
  nn::BatchNormalNorm2d<float> bad_module(3, bad_options);
  expect_error(bad_module.status(), nn::ErrorKind::invalid_argument, "eps", "module with a bad config");
  std::vector<float> image(2 * 3 * 4, 0.5f), image_out(image.size(), -1.0f);
  expect_error(bad_module.try_forward(image.data(), nn::Shape{2, 3, 2, 2}, image_out.data()), nn::ErrorKind::invalid_argument,
               "eps", "its try_forward");
  expect_error(bad_module.try_infer(image.data(), nn::Shape{2, 3, 2, 2}, image_out.data()), nn::ErrorKind::invalid_argument,
               "eps", "its try_infer");
  nn::BatchNormalNorm2d<float> module(3);
  expect_error(module.try_forward(image.data(), nn::Shape{2, 4, 3, 1}, image_out.data()), nn::ErrorKind::invalid_argument,
               "channels", "module try_forward, wrong channels");
  expect_error(module.try_backward(image.data(), nn::Shape{2, 3, 2, 2}, image.data(), image_out.data()),
               nn::ErrorKind::invalid_argument, "successful forward", "module try_backward before forward");
  expect_error(module.try_set_num_batches_tracked(-4), nn::ErrorKind::invalid_argument, "must be >= 0",
               "module negative num_batches_tracked");
  module.eval();
  expect(module.try_infer(image.data(), nn::Shape{2, 3, 2, 2}, image_out.data()).ok(), "module try_infer");
  expect(image_out[0] != -1.0f, "module try_infer wrote the output");

  // Eigen functors: shape mismatches as a Status.
  namespace ne = nn::eigen;
  std::vector<float> small(2 * 3, 1.0f), small_out(2 * 4, 0.0f);
  const ne::Forward<float> eigen_forward{config};
  expect_error(eigen_forward.try_call(nn::Mode::eval, ne::ConstTensorMap<float, 2>(small.data(), 2, 3),
                                      ne::TensorMap<float, 2>(small_out.data(), 2, 4), ne::AffineMaps<float>{},
                                      nn::RunningStats<float>{}, nn::NoiseSource<float>{}, context),
               nn::ErrorKind::invalid_argument, "differs from input shape", "eigen Forward::try_call, shapes differ");

  check_io();
  std::printf("%s\n", failures == 0 ? "no-exceptions build: all checks passed" : "no-exceptions build: FAILED");
  return failures == 0 ? 0 : 1;
}

// --- io: every user-reachable error is a Status, never abort() --------------------
#include <normnorm/io/npy.hpp>
#if NORMNORM_TEST_IO
#include <normnorm/io/io.hpp>
#endif

static void check_io() {
  std::vector<float> values;
  expect_error(nn::io::try_read_npy_as("/nonexistent/x.npy", values), nn::ErrorKind::invalid_argument,
               "cannot open", "npy: missing file");
  const unsigned char junk[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 200, 0, '{'};
  nn::io::NpyArray array;
  expect_error(nn::io::try_parse_npy(junk, sizeof junk, array), nn::ErrorKind::invalid_argument, "truncated",
               "npy: truncated header");
  std::vector<unsigned char> bytes;
  const float one = 1.0f;
  expect_error(nn::io::try_serialize_npy(&one, {2, -1}, bytes), nn::ErrorKind::invalid_argument, "negative",
               "npy: negative dimension");
#if NORMNORM_TEST_IO
  nn::io::StateDict dict;
  expect_error(nn::io::try_read_state_dict("/nonexistent/model.npz", dict), nn::ErrorKind::invalid_argument,
               "cannot open", "npz: missing file");
  expect_error(nn::io::try_read_state_dict("/nonexistent/model.safetensors", dict), nn::ErrorKind::invalid_argument,
               "cannot open", "safetensors: missing file");
  const unsigned char not_json[] = {4, 0, 0, 0, 0, 0, 0, 0, '{', 'x', 'y', 'z'};
  expect_error(nn::io::try_parse_safetensors(not_json, sizeof not_json, dict), nn::ErrorKind::invalid_argument,
               "not a valid JSON", "safetensors: malformed header");
  const unsigned char not_zip[] = {'P', 'K', 3, 4, 0, 0};
  expect_error(nn::io::try_parse_npz(not_zip, sizeof not_zip, dict), nn::ErrorKind::invalid_argument, "zip",
               "npz: not a zip archive");

  // A module's state out and in again; then a bad load that changes nothing.
  nn::BatchNormalNorm1d<float> layer(3);
  layer.weight()[1] = 2.0f;
  nn::io::StateDict saved;
  expect(nn::io::try_state_dict(layer, "norm", saved).ok() && saved.size() == 7, "state_dict of a module");
  std::vector<unsigned char> image;
  expect(nn::io::try_serialize_safetensors(saved, image).ok(), "safetensors: serialize");
  nn::io::StateDict back;
  expect(nn::io::try_parse_safetensors(image.data(), image.size(), back).ok(), "safetensors: parse");
  nn::BatchNormalNorm1d<float> fresh(3);
  expect(nn::io::try_load_state_dict(fresh, back, "norm").ok() && fresh.weight()[1] == 2.0f, "load_state_dict");
  nn::io::StateDict wrong = back;
  wrong.insert("norm.bias", nn::io::Array::from_values(values.data(), {0}));
  wrong.arrays.erase("norm.running_var");
  nn::BatchNormalNorm1d<float> untouched(3);
  expect_error(nn::io::try_load_state_dict(untouched, wrong, "norm"), nn::ErrorKind::invalid_argument,
               "2 problem(s)", "load_state_dict: wrong shape and missing entry");
  expect(untouched.weight()[1] == 1.0f, "a failed load changes nothing");
#endif
}
