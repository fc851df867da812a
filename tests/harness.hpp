#pragma once
// Owns every buffer one layer call needs, for tests: input, parameters,
// running statistics, context, outputs, gradients.

#include <random>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace normnorm::test {

inline index_t element_count(const Shape& shape) {
  index_t n = 1;
  for (index_t d : shape) n *= d;
  return n;
}

template <class T>
struct Harness {
  LayerConfig config;
  Shape shape;
  std::vector<T> x, weight, bias, out, grad_out, grad_x, grad_weight, grad_bias;
  std::vector<T> running_mean, running_var, running_lambda, running_norm;
  std::int64_t batches = 0;
  SavedContext<T> context;
  NoiseSource<T> noise;
  Execution execution{};
  MemoryFormat memory_format = MemoryFormat::contiguous;
  bool external_noise_in_backward = true;  // pass external draws to backward (when the noise is external)

  Harness(LayerConfig cfg, Shape s) : config(std::move(cfg)), shape(s) {
    const auto n = static_cast<std::size_t>(element_count(shape));
    x.assign(n, T(0));
    out.assign(n, T(0));
    grad_out.assign(n, T(0));
    grad_x.assign(n, T(0));
    const auto affine = static_cast<std::size_t>(config.num_affine());
    weight.assign(affine, T(1));
    bias.assign(affine, T(0));
    grad_weight.assign(affine, T(0));
    grad_bias.assign(affine, T(0));
    const auto channels = static_cast<std::size_t>(config.num_running());
    running_mean.assign(channels, T(0));
    running_var.assign(channels, T(1));
    running_lambda.assign(channels, T(1));
    running_norm.assign(channels, T(std::sqrt(2.0 / M_PI)));
  }

  RunningStats<T> running() {
    return {running_mean.data(), running_var.data(), running_lambda.data(), running_norm.data(), &batches,
            static_cast<index_t>(running_mean.size())};
  }

  void forward(Mode mode) {
    ForwardArgs<T> args;
    args.input = x.data();
    args.shape = shape;
    args.output = out.data();
    args.weight = {weight.data(), static_cast<index_t>(weight.size())};
    args.bias = {bias.data(), static_cast<index_t>(bias.size())};
    args.running = running();
    args.noise = noise;
    args.memory_format = memory_format;
    normnorm::forward(config, mode, args, context, execution);
  }

  void backward() {
    BackwardArgs<T> args;
    args.input = x.data();
    args.shape = shape;
    args.grad_output = grad_out.data();
    args.weight = {weight.data(), static_cast<index_t>(weight.size())};
    args.grad_input = grad_x.data();
    args.grad_weight = grad_weight.data();
    args.grad_bias = grad_bias.data();
    args.external_noise = external_noise_in_backward && noise.kind == NoiseKind::external ? noise.normals : nullptr;
    args.memory_format = memory_format;
    normnorm::backward(config, args, context, execution);
  }

  // Random skewed input, random affine parameters and upstream gradient.
  void randomize(unsigned seed, double skew = 0.7) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    for (auto& v : x) v = T(std::exp(skew * normal(rng)) + 0.3 * normal(rng));
    for (auto& v : weight) v = T(1.0 + 0.3 * normal(rng));
    for (auto& v : bias) v = T(0.2 * normal(rng));
    for (auto& v : grad_out) v = T(normal(rng));
  }
};

// (N, C, S...) contiguous -> (N, S..., C) channels-last.
template <class T>
std::vector<T> to_channels_last(const std::vector<T>& contiguous, const Shape& shape) {
  const index_t n = shape[0], c = shape[1], s = element_count(shape) / (n * c);
  std::vector<T> last(contiguous.size());
  for (index_t i = 0; i < n; ++i)
    for (index_t ch = 0; ch < c; ++ch)
      for (index_t k = 0; k < s; ++k)
        last[static_cast<std::size_t>((i * s + k) * c + ch)] = contiguous[static_cast<std::size_t>((i * c + ch) * s + k)];
  return last;
}

// The configurations the option-matrix tests sweep: each form with a small shape.
struct FormCase {
  LayerConfig config;
  Shape shape;
};

inline std::vector<FormCase> form_cases(const Options& overrides_for_all, bool apply) {
  auto with = [&](Form form) {
    Options o = default_options(form);
    if (apply) {
      o.order = overrides_for_all.order;
      o.alpha = overrides_for_all.alpha;
      o.affine = overrides_for_all.affine;
      o.standardize = overrides_for_all.standardize;
      o.power_transform = overrides_for_all.power_transform;
      o.momentum = overrides_for_all.momentum;
      o.track_running_stats = is_batch_form(form) ? overrides_for_all.track_running_stats : false;
      o.noise_train = overrides_for_all.noise_train;
      o.estimator = overrides_for_all.estimator;
      o.newton_iterations = overrides_for_all.newton_iterations;
    }
    return o;
  };
  return {
      {LayerConfig::batch_normal_norm_1d(5, with(Form::batch_1d)), Shape{12, 5}},
      {LayerConfig::batch_normal_norm_2d(3, with(Form::batch_2d)), Shape{3, 3, 4, 5}},
      {LayerConfig::layer_normal_norm(Shape{3, 7}, with(Form::layer)), Shape{2, 3, 3, 7}},
      {LayerConfig::group_normal_norm(2, 4, with(Form::group)), Shape{3, 4, 3, 5}},
      {LayerConfig::instance_normal_norm_2d(3, with(Form::instance_2d)), Shape{2, 3, 5, 5}},
  };
}

}  // namespace normnorm::test
