#pragma once
// The raw-pointer entry points: pointer + shape, for embedders whose tensors are
// not Eigen's. Everything else (Eigen functors, module classes) calls these.
//
//   forward(config, mode, args, context)   writes args.output, fills context,
//                                          updates running statistics in training
//   backward(config, args, context)        writes grad_input, grad_weight, grad_bias
//
// Both validate every argument before writing anything (docs/api.md lists the errors).

#include <cstdint>
#include <initializer_list>
#include <new>
#include <utility>
#include <stdexcept>
#include <string>

#include "normnorm/context.hpp"
#include "normnorm/distributed/reducer.hpp"
#include "normnorm/detail/validate.hpp"
#include "normnorm/engine/dispatch.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/engine/placement.hpp"
#include "normnorm/status.hpp"
#include "normnorm/storage.hpp"
#include "normnorm/views.hpp"

namespace normnorm {

// How to run: a SIMD path (default: the best this program holds and this CPU
// runs, engine/dispatch.hpp) or the scalar reference path, serially (default) or
// on the caller's Eigen thread pool. Results are bit-identical for any thread
// count: work is split by group, and sums are reduced in fixed blocks.
struct Execution {
  SimdPath simd_path = SimdPath::automatic;  // SimdPath::scalar: the scalar reference path; naming a
                                             // path that is not available: invalid_argument
  const Eigen::ThreadPoolDevice* device = nullptr;
  // Batch forms only: the batch is split across ranks, and this reduces over them
  // (docs/distributed.md). Null: one process, today's code path.
  const Reducer* reducer = nullptr;
  // Training with noise: keep the forward's draws in the context (one value of the
  // compute type per element, counted in memory_plan's state) so the backward reads
  // them instead of drawing them again. Same results, bit for bit; faster backward.
  bool keep_noise = false;
  // Batch forms on (N, C) or channels-last input, instance forms on channels-last input:
  // walk the caller's rows in place, one group per lane (engine/placement.hpp says when
  // the engine does). false: work on a transposed copy instead. The same results, bit
  // for bit; for measuring the two.
  bool columns_in_place = true;
};

// T is the storage type of the tensors (storage.hpp): float, double, Eigen::bfloat16 or
// Eigen::half; parameters, statistics and noise are in its compute type C.
template <class T>
struct ForwardArgs {
  using C = compute_t<T>;
  const T* input = nullptr;
  Shape shape;                 // row-major, PyTorch order
  T* output = nullptr;         // may equal input exactly (in place); must not partly overlap it
  Span<const C> weight, bias;  // num_affine() values each when affine; ignored otherwise
  RunningStats<C> running;     // batch forms with track_running_stats; ignored otherwise
  NoiseSource<C> noise;        // needed in training when noise_train > 0
  MemoryFormat memory_format = MemoryFormat::contiguous;  // channels_last: batch/instance 2d/3d and group forms;
                                                          // column_major: any form (engine/placement.hpp)
};

template <class T>
struct BackwardArgs {
  using C = compute_t<T>;
  const T* input = nullptr;        // the forward's input
  Shape shape;
  const T* grad_output = nullptr;  // gradient reaching the output
  Span<const C> weight;            // when affine
  T* grad_input = nullptr;         // each output may be null: not computed
  C* grad_weight = nullptr;        // num_affine() values
  C* grad_bias = nullptr;
  const C* external_noise = nullptr;  // the draws the forward used, if they were external
  MemoryFormat memory_format = MemoryFormat::contiguous;  // as in the forward
};

namespace detail {
NORMNORM_TARGET_NAMESPACE_BEGIN  // per instruction set: detail/target_namespace.hpp

// `tensors_checked`: input and output are another type's, already checked against the
// other buffers (a 2-byte storage type: validate_narrow_buffers); only the rest is checked.
template <class T>
inline Status validate_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, const Layout& layout,
                               bool distributed = false, bool tensors_checked = false) {
  const Options& o = config.options;
  const index_t count = layout.num_elements();
  // With tensors_checked, input and output take no part in the overlap checks below.
  const index_t bytes = tensors_checked ? 0 : count * static_cast<index_t>(sizeof(T));
  if (!tensors_checked) {
    if (!args.input) return fail(config, "input is null");
    if (!args.output) return fail(config, "output is null");
  }
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
  if (distributed && args.memory_format == MemoryFormat::column_major)
    return fail(config, "column_major input is not supported with a Reducer (use the contiguous format)");
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

// The placement of a call (engine/placement.hpp), after the checks of its memory format.
// `on_copy`: the call may not walk columns in place (it reduces over ranks, or it is
// the backward of a forward that did not: kept noise is in that forward's order).
template <class T>
inline Status place(const LayerConfig& config, const Shape& shape, MemoryFormat format, bool fixed_map, bool on_copy,
                    engine::Placement& placement) {
  Layout logical;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(shape, logical));
  if (format == MemoryFormat::channels_last) {
    // PyTorch's torch.channels_last (4-D) and channels_last_3d (5-D); the group form takes any rank >= 3.
    const Form f = config.form;
    if (f != Form::batch_2d && f != Form::instance_2d && f != Form::batch_3d && f != Form::instance_3d && f != Form::group)
      return fail(config, "channels_last needs a batch 2d/3d, instance 2d/3d or group layer");
    if (shape.rank() < 3) return fail(config, "channels_last needs an input of rank 3 or more, got " + shape.to_string());
  }
  placement = engine::place(logical, format, fixed_map, !on_copy && !searches_lambda(config.options), sizeof(T));
  return {};
}

// Points the context's scratch into its workspace, growing the owned block when
// needed; a provided block that is too small is refused before anything is written.
// `prefix` bytes at the workspace's start are the caller's (the widened copies of a
// 2-byte storage type); the scratch follows them.
template <class T>
inline Status carve_scratch(const LayerConfig& config, const engine::ScratchPlan& scratch, SavedContext<T>& context,
                            const char* call, std::size_t prefix = 0) {
  unsigned char* base = nullptr;
  if (!context.workspace.reserve(prefix + scratch.bytes, base))
    return fail(config, "the workspace provided holds " + std::to_string(context.workspace.capacity()) + " bytes; this " +
                            call + " needs " + std::to_string(prefix + scratch.bytes) +
                            " (normnorm::memory_plan); nothing was written");
  scratch.carve(base + prefix, context.scratch);
  return {};
}

// Bytes of `count` values of T, rounded up to the workspace's alignment.
template <class T>
inline std::size_t aligned_bytes(index_t count) {
  const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(T);
  return (bytes + Workspace::alignment - 1) / Workspace::alignment * Workspace::alignment;
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
                          const Execution& execution, std::size_t scratch_prefix = 0) {
  // Distributed: every rank reaches the handshake, even one whose checks fail (engine/reduction.hpp).
  const bool distributed = detail::reduces_over_ranks(config, mode, execution);
  engine::DistributedCall distributed_call(distributed ? execution.reducer : nullptr, config, "forward");
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<T>(config, detail::shape_to_validate(config, args.shape, execution)));
  Layout layout;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(args.shape, layout));
  NORMNORM_RETURN_IF_ERROR(detail::validate_forward(config, mode, args, layout, distributed));
  const engine::Kernels<T>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<T>(execution.simd_path, kernels));
  // A fixed per-channel map runs in place, with lanes across channels on (N, C) and
  // channels-last rows (where the polynomial map, whose lanes share a channel, gives
  // way to the exact one).
  const bool fixed_map = mode == Mode::eval && config.has_running_stats() && config.options.power_transform;
  engine::Placement placement;
  NORMNORM_RETURN_IF_ERROR(detail::place<T>(config, args.shape, args.memory_format, fixed_map,
                                         distributed || !execution.columns_in_place, placement));
  // The scratch before the handshake: a provided workspace that is too small is refused on every rank.
  const auto flow = engine::ForwardPlan<T>::of(mode, config.options, config.has_running_stats());
  const auto scratch = engine::forward_scratch<T>(placement, flow, distributed, execution.keep_noise, execution.device);
  NORMNORM_RETURN_IF_ERROR(detail::carve_scratch(config, scratch, context, "forward", scratch_prefix));
  engine::GlobalBatch global;
  if (distributed) {
    if (searches_lambda(config.options))
      return detail::fail(config, std::string("estimator ") + estimator_name(config.options.estimator) +
                                      " is not supported with a Reducer (use newton_step or gradient_step)");
    const std::uint64_t fingerprint = engine::call_fingerprint(config, 1, static_cast<int>(mode), args.running.present(),
                                                               mode == Mode::train ? args.noise : NoiseSource<T>{});
    NORMNORM_RETURN_IF_ERROR(distributed_call.agree(fingerprint, layout, mode == Mode::train, global));
  }
  auto request = detail::forward_request(config, mode, args, placement.layout);
  request.device = execution.device;
  request.reducer = distributed ? execution.reducer : nullptr;
  request.global = global;
  context.noise_kept = false;
  if (flow.noisy && execution.keep_noise) {
    context.kept_noise.resize(static_cast<std::size_t>(placement.layout.num_elements()));
    request.kept_noise = context.kept_noise.data();
  }
  NORMNORM_RETURN_IF_ERROR(engine::forward_placed(*kernels, placement, request, context));
  context.config = config;
  context.shape = args.shape;
  context.memory_format = args.memory_format;
  context.columns_in_place = placement.columns.active();
  context.noise_kept = context.noise_kind != NoiseKind::none && request.kept_noise != nullptr;
  return {};
}

// Every buffer is sized before the first write to a caller's buffer, so running
// out of memory leaves the caller's outputs and statistics as they were.
inline Status out_of_memory(const LayerConfig& config, const Shape& shape) {
  return Status::out_of_memory(std::string("normnorm: ") + config.name() + ": cannot allocate working memory for input " +
                               shape.to_string() + "; nothing was written");
}

template <class S>
inline constexpr const char* compute_name() {
  return storage_name<compute_t<S>>();
}

// The caller's 2-byte buffers against each other and against the compute-type
// buffers (the float call below sees only the widened copies).
template <class S>
inline Status validate_narrow_buffers(const LayerConfig& config, const void* read, const void* read_too, const void* written,
                                      index_t count, std::initializer_list<std::pair<const void*, index_t>> others) {
  const index_t bytes = count * static_cast<index_t>(sizeof(S));
  if (detail::partly_overlap(written, bytes, read, bytes) || detail::partly_overlap(written, bytes, read_too, bytes))
    return detail::fail(config, "the output partly overlaps an input (only exactly the same buffer is allowed)");
  for (const auto& [other, other_bytes] : others)
    if (detail::any_overlap(other, other_bytes, written, bytes) || detail::any_overlap(other, other_bytes, read, bytes) ||
        detail::any_overlap(other, other_bytes, read_too, bytes))
      return detail::fail(config, std::string("a ") + compute_name<S>() +
                                      " parameter, statistic, noise or gradient buffer overlaps a " + storage_name<S>() +
                                      " tensor");
  return {};
}

// A 2-byte storage type evaluating with running statistics (a fixed per-channel map):
// the prepared-evaluation kernel, which widens and rounds in blocks on the stack, so no
// widened copy. The tensors were checked by the caller (validate_narrow_buffers).
template <class S>
inline Status run_narrow_evaluation(const LayerConfig& config, const ForwardArgs<S>& args, const Layout& layout,
                                    const engine::Placement& placement, SavedContext<compute_t<S>>& context,
                                    const Execution& execution) {
  using C = compute_t<S>;
  ForwardArgs<C> parameters;  // the float call's arguments without its tensors
  parameters.shape = args.shape;
  parameters.weight = args.weight;
  parameters.bias = args.bias;
  parameters.running = args.running;
  parameters.memory_format = args.memory_format;
  NORMNORM_RETURN_IF_ERROR(detail::validate_forward(config, Mode::eval, parameters, layout, false, /*tensors_checked=*/true));
  const engine::Kernels<C>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<C>(execution.simd_path, kernels));
  context.valid = false;
  const auto request = detail::forward_request(config, Mode::eval, parameters, placement.layout);
  engine::prepare_forward(request, context);  // sizes the state, builds the cache (or keeps it)
  engine::record_running_stats(placement.layout, config.options, args.running, context);
  kernels->evaluate_narrow(placement.layout, args.input, args.output, context.evaluation, execution.device);
  // What the engine's own evaluation records (engine/forward.hpp).
  context.mode = Mode::eval;
  context.batch_statistics = false;
  context.noise_kind = NoiseKind::none;
  context.noise_kept = false;
  context.config = config;
  context.shape = args.shape;
  context.memory_format = args.memory_format;
  context.columns_in_place = false;  // a fixed map in place: its backward plans the copy (memory_plan)
  context.valid = true;
  return {};
}

// A 2-byte storage type: widen the input into the workspace's start, run the
// compute type's forward there in place, round the result into the output.
template <class S>
inline Status run_narrow_forward(const LayerConfig& config, Mode mode, const ForwardArgs<S>& args,
                                 SavedContext<compute_t<S>>& context, const Execution& execution) {
  using C = compute_t<S>;
  // Distributed: a refusal here still reaches the other ranks' handshake (engine/reduction.hpp);
  // past the checks, run_forward makes the call's own.
  const bool distributed = detail::reduces_over_ranks(config, mode, execution);
  engine::DistributedCall distributed_call(distributed ? execution.reducer : nullptr, config, "forward");
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<C>(config, detail::shape_to_validate(config, args.shape, execution)));
  Layout layout;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(args.shape, layout));
  if (!args.input) return detail::fail(config, "input is null");
  if (!args.output) return detail::fail(config, "output is null");
  const index_t count = layout.num_elements(), c_bytes = static_cast<index_t>(sizeof(C));
  const index_t affine_bytes = config.num_affine() * c_bytes, running_bytes = args.running.size * c_bytes;
  NORMNORM_RETURN_IF_ERROR(validate_narrow_buffers<S>(
      config, args.input, nullptr, args.output, count,
      {{args.weight.data, affine_bytes}, {args.bias.data, affine_bytes}, {args.running.mean, running_bytes},
       {args.running.var, running_bytes}, {args.running.lambda, running_bytes}, {args.running.norm, running_bytes},
       {args.running.num_batches_tracked, static_cast<index_t>(sizeof(std::int64_t))},
       {args.noise.normals, count * c_bytes}}));
  const bool fixed_map = mode == Mode::eval && config.has_running_stats() && config.options.power_transform;
  engine::Placement placement;
  NORMNORM_RETURN_IF_ERROR(detail::place<C>(config, args.shape, args.memory_format, fixed_map,
                                         distributed || !execution.columns_in_place, placement));
  if (fixed_map) return run_narrow_evaluation(config, args, layout, placement, context, execution);
  // Reserve the copy and the float call's scratch together, so that call does not move it.
  const std::size_t prefix = detail::aligned_bytes<C>(count);
  unsigned char* base = nullptr;
  const auto flow = engine::ForwardPlan<C>::of(mode, config.options, config.has_running_stats());
  const auto scratch = engine::forward_scratch<C>(placement, flow, distributed, execution.keep_noise, execution.device);
  NORMNORM_RETURN_IF_ERROR(detail::carve_scratch(config, scratch, context, "forward", prefix));
  context.workspace.reserve(prefix, base);  // (already that large: no allocation)
  C* widened = reinterpret_cast<C*>(base);
  detail::widen(args.input, widened, count);
  ForwardArgs<C> inner;
  inner.input = widened;
  inner.output = widened;
  inner.shape = args.shape;
  inner.weight = args.weight;
  inner.bias = args.bias;
  inner.running = args.running;
  inner.noise = args.noise;
  inner.memory_format = args.memory_format;
  distributed_call.hand_over();
  NORMNORM_RETURN_IF_ERROR(run_forward(config, mode, inner, context, execution, prefix));
  detail::narrow(static_cast<const C*>(widened), args.output, count);
  return {};
}

}  // namespace api_detail

// forward without exceptions: a failed Status says why nothing was written (the
// context is then invalid). Running out of memory is a Status too (out_of_memory).
// T is the tensors' storage type; the context is in its compute type (storage.hpp).
template <class T>
inline Status try_forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args,
                          SavedContext<compute_t<T>>& context, const Execution& execution = {}) {
  static_assert(storage_traits<T>::supported, "normnorm supports float, double, Eigen::bfloat16 and Eigen::half");
  const auto run = [&] {
    if constexpr (is_narrow_storage<T>)
      return api_detail::run_narrow_forward(config, mode, args, context, execution);
    else
      return api_detail::run_forward(config, mode, args, context, execution);
  };
#if NORMNORM_EXCEPTIONS
  try {
    return run();
  } catch (const std::bad_alloc&) {
    context.valid = false;
    return api_detail::out_of_memory(config, args.shape);
  }
#else
  return run();
#endif
}

// Writes args.output and fills context (training: also the running statistics);
// throws std::invalid_argument or std::domain_error, having written nothing.
template <class T>
inline void forward(const LayerConfig& config, Mode mode, const ForwardArgs<T>& args, SavedContext<compute_t<T>>& context,
                    const Execution& execution = {}) {
  detail::raise_if_error(try_forward(config, mode, args, context, execution));
}

namespace api_detail {

template <class T>
inline Status run_backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<T>& context,
                           const Execution& execution, std::size_t scratch_prefix = 0) {
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
  if (distributed && args.memory_format == MemoryFormat::column_major)
    return detail::fail(config, "column_major input is not supported with a Reducer (use the contiguous format)");
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
  if (context.noise_kind == NoiseKind::external && !context.noise_kept && !args.external_noise &&
      (args.grad_weight && config.options.affine))
    return detail::fail(config, "the forward used external noise: pass the same draws as external_noise");

  engine::Placement placement;
  if (distributed && context.columns_in_place && context.noise_kept)
    return detail::fail(config, "the forward ran in one process and kept its noise; a backward over ranks needs a forward over ranks");
  NORMNORM_RETURN_IF_ERROR(detail::place<T>(config, args.shape, args.memory_format, false,
                                         distributed || !context.columns_in_place, placement));
  const engine::Kernels<T>* kernels = nullptr;
  NORMNORM_RETURN_IF_ERROR(engine::select_kernels<T>(execution.simd_path, kernels));
  // The scratch before the handshake: a provided workspace that is too small is refused on every rank.
  const bool replay_noise =
      context.noise_kind != NoiseKind::none && !context.noise_kept && config.options.affine && args.grad_weight;
  NORMNORM_RETURN_IF_ERROR(detail::carve_scratch(
      config, engine::backward_scratch<T>(placement, replay_noise, distributed, execution.device), context, "backward",
      scratch_prefix));
  engine::GlobalBatch global;
  if (distributed) {
    const NoiseSource<T> noise = context.noise_kind == NoiseKind::philox
                                     ? NoiseSource<T>::philox(context.noise_seed, context.noise_call)
                                     : NoiseSource<T>{};
    const std::uint64_t fingerprint = engine::call_fingerprint(config, 2, static_cast<int>(context.mode), true, noise);
    NORMNORM_RETURN_IF_ERROR(distributed_call.agree(fingerprint, layout, false, global));
  }
  engine::BackwardRequest<T> rq;
  rq.layout = placement.layout;
  rq.options = config.options;
  rq.x = args.input;
  rq.grad_out = args.grad_output;
  rq.grad_x = args.grad_input;
  if (config.options.affine) {
    rq.weight = args.weight.data;
    rq.grad_weight = args.grad_weight;
    rq.grad_bias = args.grad_bias;
  }
  rq.device = execution.device;
  rq.reducer = distributed ? execution.reducer : nullptr;
  rq.global = global;
  engine::backward_placed(*kernels, placement, rq, context, args.external_noise, replay_noise);
  return {};
}

}  // namespace api_detail

namespace api_detail {

// A 2-byte storage type: widen input and grad_output into the workspace's start, run
// the compute type's backward there (grad_input in place of grad_output's copy), and
// round grad_input into the caller's buffer.
template <class S>
inline Status run_narrow_backward(const LayerConfig& config, const BackwardArgs<S>& args,
                                  SavedContext<compute_t<S>>& context, const Execution& execution) {
  using C = compute_t<S>;
  // Distributed: as run_narrow_forward.
  const bool distributed =
      execution.reducer && is_batch_form(config.form) && !(context.valid && !context.batch_statistics);
  engine::DistributedCall distributed_call(distributed ? execution.reducer : nullptr, config, "backward");
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<C>(config, detail::shape_to_validate(config, args.shape, execution)));
  Layout layout;
  NORMNORM_RETURN_IF_ERROR(config.check_layout(args.shape, layout));
  if (!context.valid) return detail::fail(config, "backward needs the saved context of a successful forward");
  if (!args.input) return detail::fail(config, "input is null");
  if (!args.grad_output) return detail::fail(config, "grad_output is null");
  const index_t count = layout.num_elements(), c_bytes = static_cast<index_t>(sizeof(C));
  const index_t affine_bytes = config.num_affine() * c_bytes;
  NORMNORM_RETURN_IF_ERROR(validate_narrow_buffers<S>(
      config, args.input, args.grad_output, args.grad_input, count,
      {{args.weight.data, affine_bytes}, {args.grad_weight, affine_bytes}, {args.grad_bias, affine_bytes},
       {args.external_noise, count * c_bytes}}));
  engine::Placement placement;
  if (distributed && context.columns_in_place && context.noise_kept)
    return detail::fail(config, "the forward ran in one process and kept its noise; a backward over ranks needs a forward over ranks");
  NORMNORM_RETURN_IF_ERROR(detail::place<C>(config, args.shape, args.memory_format, false,
                                         distributed || !context.columns_in_place, placement));
  const bool replay_noise =
      context.noise_kind != NoiseKind::none && !context.noise_kept && config.options.affine && args.grad_weight;
  const std::size_t half = detail::aligned_bytes<C>(count), prefix = 2 * half;
  NORMNORM_RETURN_IF_ERROR(
      detail::carve_scratch(config, engine::backward_scratch<C>(placement, replay_noise, distributed, execution.device), context,
                            "backward", prefix));
  unsigned char* base = nullptr;
  context.workspace.reserve(prefix, base);  // (already that large: no allocation)
  C* input = reinterpret_cast<C*>(base);
  C* gradient = reinterpret_cast<C*>(base + half);
  detail::widen(args.input, input, count);
  detail::widen(args.grad_output, gradient, count);
  BackwardArgs<C> inner;
  inner.input = input;
  inner.shape = args.shape;
  inner.grad_output = gradient;
  inner.weight = args.weight;
  inner.grad_input = args.grad_input ? gradient : nullptr;
  inner.grad_weight = args.grad_weight;
  inner.grad_bias = args.grad_bias;
  inner.external_noise = args.external_noise;
  inner.memory_format = args.memory_format;
  distributed_call.hand_over();
  NORMNORM_RETURN_IF_ERROR(run_backward(config, inner, context, execution, prefix));
  if (args.grad_input) detail::narrow(static_cast<const C*>(gradient), args.grad_input, count);
  return {};
}

}  // namespace api_detail

// backward without exceptions: a failed Status says why nothing was written.
template <class T>
inline Status try_backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<compute_t<T>>& context,
                           const Execution& execution = {}) {
  static_assert(storage_traits<T>::supported, "normnorm supports float, double, Eigen::bfloat16 and Eigen::half");
  const auto run = [&] {
    if constexpr (is_narrow_storage<T>)
      return api_detail::run_narrow_backward(config, args, context, execution);
    else
      return api_detail::run_backward(config, args, context, execution);
  };
#if NORMNORM_EXCEPTIONS
  try {
    return run();
  } catch (const std::bad_alloc&) {
    return api_detail::out_of_memory(config, args.shape);
  }
#else
  return run();
#endif
}

// Writes grad_input, grad_weight and grad_bias (each when not null); throws
// std::invalid_argument, having written nothing, on a bad argument.
template <class T>
inline void backward(const LayerConfig& config, const BackwardArgs<T>& args, SavedContext<compute_t<T>>& context,
                     const Execution& execution = {}) {
  detail::raise_if_error(try_backward(config, args, context, execution));
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm
