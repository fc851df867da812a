#pragma once
// The raw-pointer entry points: pointer + shape, for embedders whose tensors are
// not Eigen's. Everything else (Eigen functors, module classes) calls these.
//
//   forward(config, mode, args, context)   writes args.output, fills context,
//                                          updates running statistics in training
//   backward(config, args, context)        writes grad_input, grad_weight, grad_bias
//
// Both validate every argument before writing anything (docs/api.md lists the errors).

#include <stdexcept>
#include <string>


#include "normnorm/context.hpp"
#include "normnorm/detail/validate.hpp"
#include "normnorm/engine/backward.hpp"
#include "normnorm/engine/forward.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/views.hpp"

namespace normnorm {

// How to run: the SIMD path (default) or the scalar reference path, serially
// (default) or on the caller's Eigen thread pool. Results are bit-identical for
// any thread count: work is split by group, and sums are reduced in fixed blocks.
struct Execution {
  bool simd = true;
  const Eigen::ThreadPoolDevice* device = nullptr;
};

template <class T>
struct ForwardArgs {
  const T* input = nullptr;
  Shape shape;                 // row-major, PyTorch order
  T* output = nullptr;         // may equal input exactly (in place); must not partly overlap it
  Span<const T> weight, bias;  // num_affine() values each when affine; ignored otherwise
  RunningStats<T> running;     // batch forms with track_running_stats; ignored otherwise
  NoiseSource<T> noise;        // needed in training when noise_train > 0
};

template <class T>
struct BackwardArgs {
  const T* input = nullptr;        // the forward's input
  Shape shape;
  const T* grad_output = nullptr;  // gradient reaching the output
  Span<const T> weight;            // when affine
  T* grad_input = nullptr;         // each output may be null: not computed
  T* grad_weight = nullptr;        // num_affine() values
  T* grad_bias = nullptr;
  const T* external_noise = nullptr;  // the draws the forward used, if they were external
};

namespace detail {

template <class T>
inline index_t element_count(const Shape& shape) {
  index_t count = 1;
  for (index_t d : shape) count *= d;
  return count;
}

template <class T>
inline void validate_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, const Layout& layout) {
  const Options& o = config.options;
  const index_t count = layout.num_elements();
  const index_t bytes = count * static_cast<index_t>(sizeof(T));
  if (!args.input) fail(config, "input is null");
  if (!args.output) fail(config, "output is null");
  if (partly_overlap(args.output, bytes, args.input, bytes))
    fail(config, "output partly overlaps input (only exactly the same buffer is allowed)");
  const index_t affine_bytes = config.num_affine() * static_cast<index_t>(sizeof(T));
  if (o.affine) {
    require_buffer(config, args.weight.data, args.weight.size, config.num_affine(), "weight");
    require_buffer(config, args.bias.data, args.bias.size, config.num_affine(), "bias");
    if (any_overlap(args.output, bytes, args.weight.data, affine_bytes) ||
        any_overlap(args.output, bytes, args.bias.data, affine_bytes))
      fail(config, "output overlaps weight or bias");
  }
  if (config.has_running_stats()) {
    const RunningStats<T>& rs = args.running;
    const index_t c = config.num_running();
    for (auto [pointer, name] : {std::pair<T*, const char*>{rs.mean, "running_mean"}, {rs.var, "running_var"},
                                 {rs.lambda, "running_lambda"}, {rs.norm, "running_norm"}}) {
      require_buffer(config, pointer, rs.size, c, name);
      if (any_overlap(args.output, bytes, pointer, c * static_cast<index_t>(sizeof(T))))
        fail(config, std::string("output overlaps ") + name);
    }
    if (!o.momentum && !rs.num_batches_tracked)
      fail(config, "num_batches_tracked is null, but momentum is none (cumulative average needs the count)");
  }
  if (mode == Mode::train) {
    if (is_batch_form(config.form) && layout.group_size() < 2)
      fail(config, "training needs more than one value per channel, got input " + args.shape.to_string());
    if (o.power_transform && o.noise_train > 0) {
      if (args.noise.kind == NoiseKind::none)
        fail(config, "training with noise_train > 0 needs a noise source (NoiseSource::philox or ::external), "
                     "or set noise_train = 0");
      if (args.noise.kind == NoiseKind::external) {
        if (!args.noise.normals) fail(config, "external noise is null");
        if (any_overlap(args.output, bytes, args.noise.normals, bytes)) fail(config, "output overlaps the external noise");
      }
    }
  }
}

template <class T>
inline engine::ForwardRequest<T> forward_request(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args,
                                                 const Layout& layout) {
  engine::ForwardRequest<T> rq;
  rq.layout = layout;
  rq.options = config.options;
  rq.mode = mode;
  rq.layer_name = config.name();
  rq.x = args.input;
  rq.out = args.output;
  if (config.options.affine) {
    rq.weight = args.weight.data;
    rq.bias = args.bias.data;
  }
  if (config.has_running_stats()) rq.running = args.running;
  rq.noise = args.noise;
  return rq;
}

}  // namespace detail

template <class T>
inline void forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, SavedContext<T>& context,
                    const Execution& execution = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "normnorm supports float and double");
  detail::validate_options(config);
  detail::validate_shape<T>(config, args.shape);
  const Layout layout = config.layout_for(args.shape);
  detail::validate_forward(config, mode, args, layout);
  auto request = detail::forward_request(config, mode, args, layout);
  request.device = execution.device;
  if (execution.simd)
    engine::forward<T, true>(request, context);
  else
    engine::forward<T, false>(request, context);
  context.shape = args.shape;
}

template <class T>
inline void backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<T>& context,
                     const Execution& execution = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "normnorm supports float and double");
  detail::validate_options(config);
  detail::validate_shape<T>(config, args.shape);
  const Layout layout = config.layout_for(args.shape);
  if (!context.valid) detail::fail(config, "backward needs the saved context of a successful forward");
  if (context.shape != args.shape)
    detail::fail(config, "input shape " + args.shape.to_string() + " differs from the forward's " + context.shape.to_string());
  if (!args.input) detail::fail(config, "input is null");
  if (!args.grad_output) detail::fail(config, "grad_output is null");
  const index_t bytes = layout.num_elements() * static_cast<index_t>(sizeof(T));
  const index_t affine_bytes = config.num_affine() * static_cast<index_t>(sizeof(T));
  if (detail::partly_overlap(args.grad_input, bytes, args.input, bytes) ||
      detail::partly_overlap(args.grad_input, bytes, args.grad_output, bytes))
    detail::fail(config, "grad_input partly overlaps input or grad_output (only exactly the same buffer is allowed)");
  if (config.options.affine) {
    detail::require_buffer(config, args.weight.data, args.weight.size, config.num_affine(), "weight");
    if (detail::any_overlap(args.grad_input, bytes, args.weight.data, affine_bytes))
      detail::fail(config, "grad_input overlaps weight");
    if (detail::any_overlap(args.grad_weight, affine_bytes, args.grad_bias, affine_bytes))
      detail::fail(config, "grad_weight overlaps grad_bias");
    for (T* out : {args.grad_weight, args.grad_bias})
      if (detail::any_overlap(out, affine_bytes, args.input, bytes) || detail::any_overlap(out, affine_bytes, args.grad_output, bytes) ||
          detail::any_overlap(out, affine_bytes, args.grad_input, bytes) || detail::any_overlap(out, affine_bytes, args.weight.data, affine_bytes) ||
          detail::any_overlap(out, affine_bytes, args.external_noise, bytes))
        detail::fail(config, "grad_weight / grad_bias overlap another argument");
  }
  if (detail::any_overlap(args.grad_input, bytes, args.external_noise, bytes))
    detail::fail(config, "grad_input overlaps external_noise");
  if (context.noise_kind == NoiseKind::external && !args.external_noise && (args.grad_weight && config.options.affine))
    detail::fail(config, "the forward used external noise: pass the same draws as external_noise");

  engine::BackwardRequest<T> rq;
  rq.layout = layout;
  rq.options = config.options;
  rq.x = args.input;
  rq.grad_out = args.grad_output;
  rq.external_noise = args.external_noise;
  rq.grad_x = args.grad_input;
  if (config.options.affine) {
    rq.weight = args.weight.data;
    rq.grad_weight = args.grad_weight;
    rq.grad_bias = args.grad_bias;
  }
  rq.device = execution.device;
  if (execution.simd)
    engine::backward<T, true>(rq, context);
  else
    engine::backward<T, false>(rq, context);
}

}  // namespace normnorm
