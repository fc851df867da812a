#pragma once
// The raw-pointer entry points: pointer + shape, for embedders whose tensors are
// not Eigen's. Everything else (Eigen functors, module classes) calls these.
//
//   forward(config, mode, args, context)   writes args.output, fills context,
//                                          updates running statistics in training
//   backward(config, args, context)        writes grad_input, grad_weight, grad_bias
//
// Both validate every argument before writing anything (docs/api.md lists the errors).

#include <new>
#include <stdexcept>
#include <string>

#include "normnorm/context.hpp"
#include "normnorm/distributed/reducer.hpp"
#include "normnorm/detail/validate.hpp"
#include "normnorm/engine/dispatch.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/engine/transpose.hpp"
#include "normnorm/status.hpp"
#include "normnorm/views.hpp"

namespace normnorm {

// How to run: a SIMD path (default: the best this program holds and this CPU
// runs, engine/dispatch.hpp) or the scalar reference path, serially (default) or
// on the caller's Eigen thread pool. Results are bit-identical for any thread
// count: work is split by group, and sums are reduced in fixed blocks.
struct Execution {
  bool simd = true;  // false: the scalar path, whatever simd_path says
  const Eigen::ThreadPoolDevice* device = nullptr;
  SimdPath simd_path = SimdPath::automatic;  // naming a path that is not available: invalid_argument
  // Batch forms only: the batch is split across ranks, and this reduces over them
  // (docs/distributed.md). Null: one process, today's code path.
  const Reducer* reducer = nullptr;
};

template <class T>
struct ForwardArgs {
  const T* input = nullptr;
  Shape shape;                 // row-major, PyTorch order
  T* output = nullptr;         // may equal input exactly (in place); must not partly overlap it
  Span<const T> weight, bias;  // num_affine() values each when affine; ignored otherwise
  RunningStats<T> running;     // batch forms with track_running_stats; ignored otherwise
  NoiseSource<T> noise;        // needed in training when noise_train > 0
  MemoryFormat memory_format = MemoryFormat::contiguous;  // channels_last: batch/instance 2d/3d and group forms
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
  MemoryFormat memory_format = MemoryFormat::contiguous;  // as in the forward
};

namespace detail {
NORMNORM_TARGET_NAMESPACE_BEGIN  // per instruction set: detail/target_namespace.hpp

template <class T>
inline Status validate_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, const Layout& layout,
                               bool distributed = false) {
  const Options& o = config.options;
  const index_t count = layout.num_elements();
  const index_t bytes = count * static_cast<index_t>(sizeof(T));
  if (!args.input) return fail(config, "input is null");
  if (!args.output) return fail(config, "output is null");
  if (partly_overlap(args.output, bytes, args.input, bytes))
    return fail(config, "output partly overlaps input (only exactly the same buffer is allowed)");
  const index_t affine_bytes = config.num_affine() * static_cast<index_t>(sizeof(T));
  if (o.affine) {
    NORMNORM_RETURN_IF_ERROR(require_buffer(config, args.weight.data, args.weight.size, config.num_affine(), "weight"));
    NORMNORM_RETURN_IF_ERROR(require_buffer(config, args.bias.data, args.bias.size, config.num_affine(), "bias"));
    if (any_overlap(args.output, bytes, args.weight.data, affine_bytes) ||
        any_overlap(args.output, bytes, args.bias.data, affine_bytes))
      return fail(config, "output overlaps weight or bias");
  }
  if (config.has_running_stats()) {
    const RunningStats<T>& rs = args.running;
    const index_t c = config.num_running();
    const index_t stat_bytes = c * static_cast<index_t>(sizeof(T));
    const std::pair<T*, const char*> stats[] = {
        {rs.mean, "running_mean"}, {rs.var, "running_var"}, {rs.lambda, "running_lambda"}, {rs.norm, "running_norm"}};
    const index_t noise_bytes = args.noise.kind == NoiseKind::external ? bytes : 0;
    for (std::size_t i = 0; i < 4; ++i) {
      const auto [pointer, name] = stats[i];
      NORMNORM_RETURN_IF_ERROR(require_buffer(config, pointer, rs.size, c, name));
      if (any_overlap(args.output, bytes, pointer, stat_bytes)) return fail(config, std::string("output overlaps ") + name);
      // Training writes them while groups are still read: no sharing with any input.
      if (any_overlap(args.input, bytes, pointer, stat_bytes)) return fail(config, std::string(name) + " overlaps input");
      if (o.affine && (any_overlap(args.weight.data, affine_bytes, pointer, stat_bytes) ||
                       any_overlap(args.bias.data, affine_bytes, pointer, stat_bytes)))
        return fail(config, std::string(name) + " overlaps weight or bias");
      if (any_overlap(args.noise.normals, noise_bytes, pointer, stat_bytes))
        return fail(config, std::string(name) + " overlaps the external noise");
      for (std::size_t j = 0; j < i; ++j)
        if (any_overlap(stats[j].first, stat_bytes, pointer, stat_bytes))
          return fail(config, std::string(name) + " overlaps " + stats[j].second + " (each needs its own buffer)");
    }
    if (!o.momentum && !rs.num_batches_tracked)
      return fail(config, "num_batches_tracked is null, but momentum is none (cumulative average needs the count)");
    if (const std::int64_t* batches_tracked = rs.num_batches_tracked) {
      constexpr index_t count_bytes = sizeof(std::int64_t);
      for (const auto& [stat, stat_name] : stats)
        if (any_overlap(batches_tracked, count_bytes, stat, stat_bytes))
          return fail(config, std::string("num_batches_tracked overlaps ") + stat_name);
      if (any_overlap(batches_tracked, count_bytes, args.input, bytes) || any_overlap(batches_tracked, count_bytes, args.output, bytes))
        return fail(config, "num_batches_tracked overlaps input or output");
      if (*batches_tracked < 0)
        return fail(config, "num_batches_tracked must be >= 0, got " + std::to_string(*batches_tracked) +
                                " (a corrupt checkpoint?); nothing was written");
    }
  }
  if (mode == Mode::train) {
    if (is_batch_form(config.form) && layout.group_size() < 2 && !distributed)  // distributed: over all ranks
      return fail(config, "training needs more than one value per channel, got input " + args.shape.to_string());
    if (o.power_transform && o.noise_train > 0) {
      if (args.noise.kind == NoiseKind::none)
        return fail(config, "training with noise_train > 0 needs a noise source (NoiseSource::philox or ::external), "
                     "or set noise_train = 0");
      if (args.noise.kind == NoiseKind::external) {
        if (!args.noise.normals) return fail(config, "external noise is null");
        if (any_overlap(args.output, bytes, args.noise.normals, bytes)) return fail(config, "output overlaps the external noise");
      }
    }
  }
  return {};
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

// How the engine sees the input: its layout, and whether it needs a transposed copy.
struct EnginePlan {
  Layout layout;
  engine::Transposition transposition;  // inactive: the engine reads the caller's buffers
  bool noise_keyed_in_engine_order = true;  // the copy's flat index is the logical (N, C, ...) index
};

inline Status plan_engine(const LayerConfig& config, const Shape& shape, MemoryFormat format, bool fixed_map,
                          EnginePlan& plan) {
  plan = EnginePlan{};
  NORMNORM_RETURN_IF_ERROR(config.check_layout(shape, plan.layout));
  const Layout logical = plan.layout;  // a copy: plan.layout changes below
  if (format == MemoryFormat::channels_last) {
    // PyTorch's torch.channels_last (4-D) and channels_last_3d (5-D); the group form takes any rank >= 3.
    const Form f = config.form;
    if (f != Form::batch_2d && f != Form::instance_2d && f != Form::batch_3d && f != Form::instance_3d && f != Form::group)
      return fail(config, "channels_last needs a batch 2d/3d, instance 2d/3d or group layer");
    if (shape.rank() < 3) return fail(config, "channels_last needs an input of rank 3 or more, got " + shape.to_string());
    if (fixed_map) {  // rows of C values, each lane its own channel
      plan.layout = Layout{logical.outer * logical.inner, logical.channels, 1, 1, true};
      return {};
    }
    plan.transposition = {logical.outer, logical.inner, logical.channels};
    return {};
  }
  if (config.form == Form::batch_1d && logical.inner == 1 && logical.channels > 1 && !fixed_map) {
    // (N, C) (or (N, C, 1)): groups are columns, so run them as (1, C, N) rows.
    // (N, C, L) with L > 1 already has runs of one channel, as batch 2d.
    plan.layout = Layout{1, logical.channels, logical.outer, 1, true};
    plan.transposition = {1, logical.outer, logical.channels};
    plan.noise_keyed_in_engine_order = false;
  }
  return {};
}

// The noise the engine should use on a transposed copy, in `buffer` when it has to be materialized.
template <class T>
inline NoiseSource<T> engine_noise(const EnginePlan& plan, const NoiseSource<T>& logical, T* buffer, T* scratch,
                                   const engine::Kernels<T>& kernels, const Eigen::ThreadPoolDevice* device,
                                   index_t noise_offset = 0) {  // distributed: elements on lower ranks
  if (logical.kind == NoiseKind::none) return logical;
  if (logical.kind == NoiseKind::philox && plan.noise_keyed_in_engine_order) return logical;
  // Draws in the caller's memory order, then transposed like the input.
  const index_t count = plan.transposition.elements();
  const T* source = logical.normals;
  if (logical.kind == NoiseKind::philox) {
    kernels.fill_noise(logical, noise_offset, count, scratch);
    source = scratch;
  }
  kernels.transpose(plan.transposition, source, buffer, true, device);
  return NoiseSource<T>::external(buffer);
}

// Whether a call reduces over ranks (docs/distributed.md): a batch form with a
// reducer whose statistics come from the batch (evaluation with running statistics
// is per element and makes no collective call).
inline bool reduces_over_ranks(const LayerConfig& config, Mode mode, const Execution& execution) {
  return execution.reducer && is_batch_form(config.form) && !(mode == Mode::eval && config.has_running_stats());
}
// A rank of a split batch may hold no samples: the batch axis is checked as if it held one.
inline Shape shape_to_validate(const LayerConfig& config, const Shape& shape, const Execution& execution) {
  Shape checked = shape;
  if (execution.reducer && is_batch_form(config.form) && checked.rank() > 0 && checked[0] == 0) checked[0] = 1;
  return checked;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace detail
NORMNORM_TARGET_NAMESPACE_BEGIN

// (Not `detail`: a nested detail here would hide normnorm::detail.)
namespace api_detail {

template <class T>
inline Status run_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, SavedContext<T>& context,
                          const Execution& execution) {
  // Distributed: every rank reaches the handshake, even one whose checks fail (engine/reduction.hpp).
  const bool distributed = detail::reduces_over_ranks(config, mode, execution);
  engine::DistributedCall distributed_call(distributed ? execution.reducer : nullptr, config, "forward");
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<T>(config, detail::shape_to_validate(config, args.shape, execution)));
  Layout layout;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(args.shape, layout));
  NORMNORM_RETURN_IF_ERROR(detail::validate_forward(config, mode, args, layout, distributed));
  const engine::Kernels<T>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<T>(execution.simd, execution.simd_path, kernels));
  // A fixed per-channel map runs in place, with lanes across channels on (N, C) and
  // channels-last rows (where the polynomial map, whose lanes share a channel, gives
  // way to the exact one).
  const bool fixed_map = mode == Mode::eval && config.has_running_stats() && config.options.power_transform;
  detail::EnginePlan plan;
  NORMNORM_RETURN_IF_ERROR(detail::plan_engine(config, args.shape, args.memory_format, fixed_map, plan));
  engine::GlobalBatch global;
  if (distributed) {
    if (searches_lambda(config.options))
      return detail::fail(config, std::string("estimator ") + estimator_name(config.options.estimator) +
                                      " is not supported with a Reducer (use newton_step or gradient_step)");
    const std::uint64_t fingerprint = engine::call_fingerprint(config, 1, static_cast<int>(mode), args.running.present(),
                                                               mode == Mode::train ? args.noise : NoiseSource<T>{});
    NORMNORM_RETURN_IF_ERROR(distributed_call.agree(fingerprint, layout, mode == Mode::train, global));
  }
  auto request = detail::forward_request(config, mode, args, plan.layout);
  request.device = execution.device;
  request.reducer = distributed ? execution.reducer : nullptr;
  request.global = global;
  const engine::Transposition& t = plan.transposition;
  if (t.active()) {
    // Run on a transposed copy, in place, with the noise laid out the same way.
    const bool noisy = mode == Mode::train && config.options.power_transform && config.options.noise_train > 0;
    context.workspace.resize(static_cast<std::size_t>(t.elements() * (noisy ? 3 : 1)));
    T* copy = context.workspace.data();
    kernels->transpose(t, args.input, copy, true, execution.device);
    request.x = copy;
    request.out = copy;
    if (noisy)
      request.noise = detail::engine_noise(plan, args.noise, copy + t.elements(), copy + 2 * t.elements(), *kernels,
                                            execution.device, global.noise_offset);
  }
  NORMNORM_RETURN_IF_ERROR(kernels->forward(request, context));
  if (t.active()) kernels->transpose(t, static_cast<const T*>(context.workspace.data()), args.output, false, execution.device);
  context.config = config;
  context.shape = args.shape;
  context.memory_format = args.memory_format;
  if (context.noise_kind != NoiseKind::none) {  // replay from the caller's source, not the transposed copy
    context.noise_kind = args.noise.kind;
    context.noise_seed = args.noise.seed;
    context.noise_call = args.noise.call;
  }
  return {};
}

// Every buffer is sized before the first write to a caller's buffer, so running
// out of memory leaves the caller's outputs and statistics as they were.
inline Status out_of_memory(const LayerConfig& config, const Shape& shape) {
  return Status::out_of_memory(std::string("normnorm: ") + config.name() + ": cannot allocate working memory for input " +
                               shape.to_string() + "; nothing was written");
}

}  // namespace api_detail

// forward without exceptions: a failed Status says why nothing was written (the
// context is then invalid). Running out of memory is a Status too (out_of_memory).
template <class T>
inline Status try_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, SavedContext<T>& context,
                          const Execution& execution = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "normnorm supports float and double");
#if NORMNORM_EXCEPTIONS
  try {
    return api_detail::run_forward(config, mode, args, context, execution);
  } catch (const std::bad_alloc&) {
    context.valid = false;
    return api_detail::out_of_memory(config, args.shape);
  }
#else
  return api_detail::run_forward(config, mode, args, context, execution);
#endif
}

// Writes args.output and fills context (training: also the running statistics);
// throws std::invalid_argument or std::domain_error, having written nothing.
template <class T>
inline void forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, SavedContext<T>& context,
                    const Execution& execution = {}) {
  detail::raise_if_error(try_forward(config, mode, args, context, execution));
}

namespace api_detail {

template <class T>
inline Status run_backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<T>& context,
                           const Execution& execution) {
  // Distributed (batch forms whose forward took the batch's statistics): every rank
  // reaches the handshake, even one whose checks fail (engine/reduction.hpp).
  const bool distributed =
      execution.reducer && is_batch_form(config.form) && !(context.valid && !context.batch_statistics);
  engine::DistributedCall distributed_call(distributed ? execution.reducer : nullptr, config, "backward");
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<T>(config, detail::shape_to_validate(config, args.shape, execution)));
  Layout layout;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(args.shape, layout));
  if (!context.valid) return detail::fail(config, "backward needs the saved context of a successful forward");
  const std::string difference = detail::config_difference(context.config, config);
  if (!difference.empty())
    return detail::fail(config, "backward's config differs from the forward that filled the context (" + difference + ")");
  if (context.shape != args.shape)
    return detail::fail(config, "input shape " + args.shape.to_string() + " differs from the forward's " + context.shape.to_string());
  if (context.memory_format != args.memory_format) return detail::fail(config, "memory_format differs from the forward's");
  if (!args.input) return detail::fail(config, "input is null");
  if (!args.grad_output) return detail::fail(config, "grad_output is null");
  const index_t bytes = layout.num_elements() * static_cast<index_t>(sizeof(T));
  const index_t affine_bytes = config.num_affine() * static_cast<index_t>(sizeof(T));
  if (detail::partly_overlap(args.grad_input, bytes, args.input, bytes) ||
      detail::partly_overlap(args.grad_input, bytes, args.grad_output, bytes))
    return detail::fail(config, "grad_input partly overlaps input or grad_output (only exactly the same buffer is allowed)");
  if (config.options.affine) {
    NORMNORM_RETURN_IF_ERROR(detail::require_buffer(config, args.weight.data, args.weight.size, config.num_affine(), "weight"));
    if (detail::any_overlap(args.grad_input, bytes, args.weight.data, affine_bytes))
      return detail::fail(config, "grad_input overlaps weight");
    if (detail::any_overlap(args.grad_weight, affine_bytes, args.grad_bias, affine_bytes))
      return detail::fail(config, "grad_weight overlaps grad_bias");
    for (T* out : {args.grad_weight, args.grad_bias})
      if (detail::any_overlap(out, affine_bytes, args.input, bytes) || detail::any_overlap(out, affine_bytes, args.grad_output, bytes) ||
          detail::any_overlap(out, affine_bytes, args.grad_input, bytes) || detail::any_overlap(out, affine_bytes, args.weight.data, affine_bytes) ||
          detail::any_overlap(out, affine_bytes, args.external_noise, bytes))
        return detail::fail(config, "grad_weight / grad_bias overlap another argument");
  }
  if (detail::any_overlap(args.grad_input, bytes, args.external_noise, bytes))
    return detail::fail(config, "grad_input overlaps external_noise");
  if (context.noise_kind == NoiseKind::external && !args.external_noise && (args.grad_weight && config.options.affine))
    return detail::fail(config, "the forward used external noise: pass the same draws as external_noise");

  detail::EnginePlan plan;
  NORMNORM_RETURN_IF_ERROR(detail::plan_engine(config, args.shape, args.memory_format, false, plan));
  const engine::Kernels<T>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<T>(execution.simd, execution.simd_path, kernels));
  engine::GlobalBatch global;
  if (distributed) {
    const NoiseSource<T> noise = context.noise_kind == NoiseKind::philox
                                     ? NoiseSource<T>::philox(context.noise_seed, context.noise_call)
                                     : NoiseSource<T>{};
    const std::uint64_t fingerprint = engine::call_fingerprint(config, 2, static_cast<int>(context.mode), true, noise);
    NORMNORM_RETURN_IF_ERROR(distributed_call.agree(fingerprint, layout, false, global));
  }
  engine::BackwardRequest<T> rq;
  rq.layout = plan.layout;
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
  rq.reducer = distributed ? execution.reducer : nullptr;
  rq.global = global;
  const engine::Transposition& t = plan.transposition;
  const NoiseKind caller_noise = context.noise_kind;
  // The transposed path swaps the context's noise kind for the engine; put it back
  // however this returns (an allocation failure included).
  struct RestoreNoiseKind {
    SavedContext<T>& context;
    NoiseKind kind;
    ~RestoreNoiseKind() { context.noise_kind = kind; }
  } restore_noise_kind{context, caller_noise};
  if (t.active()) {
    // The forward ran on a transposed copy: so does the backward (grad_x in place of grad_out's copy).
    const bool replay_noise = caller_noise != NoiseKind::none && rq.grad_weight;
    context.workspace.resize(static_cast<std::size_t>(t.elements() * (replay_noise ? 4 : 2)));
    T* x_copy = context.workspace.data();
    T* grad_copy = x_copy + t.elements();
    kernels->transpose(t, args.input, x_copy, true, execution.device);
    kernels->transpose(t, args.grad_output, grad_copy, true, execution.device);
    rq.x = x_copy;
    rq.grad_out = grad_copy;
    rq.grad_x = args.grad_input ? grad_copy : nullptr;
    if (replay_noise) {
      NoiseSource<T> logical = caller_noise == NoiseKind::philox
                                   ? NoiseSource<T>::philox(context.noise_seed, context.noise_call)
                                   : NoiseSource<T>::external(args.external_noise);
      const NoiseSource<T> copy_noise =
          detail::engine_noise(plan, logical, grad_copy + t.elements(), grad_copy + 2 * t.elements(), *kernels,
                               execution.device, global.noise_offset);
      context.noise_kind = copy_noise.kind;
      rq.external_noise = copy_noise.normals;
    }
  }
  kernels->backward(rq, context);
  if (t.active() && args.grad_input)
    kernels->transpose(t, static_cast<const T*>(context.workspace.data() + t.elements()), args.grad_input, false,
                      execution.device);
  return {};
}

}  // namespace api_detail

// backward without exceptions: a failed Status says why nothing was written.
template <class T>
inline Status try_backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<T>& context,
                           const Execution& execution = {}) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "normnorm supports float and double");
#if NORMNORM_EXCEPTIONS
  try {
    return api_detail::run_backward(config, args, context, execution);
  } catch (const std::bad_alloc&) {
    return api_detail::out_of_memory(config, args.shape);
  }
#else
  return api_detail::run_backward(config, args, context, execution);
#endif
}

// Writes grad_input, grad_weight and grad_bias (each when not null); throws
// std::invalid_argument, having written nothing, on a bad argument.
template <class T>
inline void backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<T>& context,
                     const Execution& execution = {}) {
  detail::raise_if_error(try_backward(config, args, context, execution));
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm
