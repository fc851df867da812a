#pragma once
// Where the engine runs a call: on the caller's memory as it is, walked by a
// layout of its own, or on a transposed copy in the workspace. The caller
// (api.hpp) describes the memory (a logical layout and a MemoryFormat); the
// choice, the copies and the noise keyed to match them are all here.
//
//   contiguous (N, C, ...)      the logical layout, in place
//   contiguous (N, C), batch    groups are columns: walked in place, one channel per
//                               lane (engine/column_forward.hpp); a copy as (1, C, N)
//                               rows for the searching estimators and over ranks
//   channels-last (N, ..., C)   batch forms: columns in place, as (N, C); instance forms (and
//                               groups of one channel): each sample's columns in place;
//                               evaluation with a fixed per-channel map in place, lanes
//                               across channels; the group form, and the searching
//                               estimators, a copy in (N, C, ...) order
//   column-major, batch forms   in place: memory is (..., C, N), so each channel is
//                               runs of N values, one run per spatial position
//   column-major, other forms   a copy in (N, C, ...) order (spatial positions, and the
//                               layer form's normalized positions, in memory order)
//
// Philox draws are keyed by the element's offset in the caller's memory, except for
// channels-last input, where they are keyed by the logical (N, C, ...) offset as the
// contiguous case is: the same seed gives both formats the same result. Walking columns
// in place or a copy gives the same bits (tests/test_columns.cpp).

#include <algorithm>

#include "normnorm/engine/dispatch.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {

struct Placement {
  Layout layout;                // what the kernels walk
  Transposition transposition;  // active: they walk a copy of the caller's memory
  // The copy's offset is the Philox key (channels-last: the logical offset); otherwise
  // draws are keyed by the caller's memory offset, then transposed like the input.
  bool noise_keyed_in_engine_order = true;
  // Active: the kernels walk the caller's rows in place, one group per lane.
  Columns columns;
  bool noise_keyed_logically = false;  // columns of channels-last memory: Philox keys are logical offsets
};

// Above: the type. Below: code, compiled per target (detail/target_namespace.hpp);
// the per-element work is in the kernels it calls.
NORMNORM_TARGET_NAMESPACE_BEGIN

// Whether walking the columns in place beats the copy, as measured (docs/benchmarks.md,
// "Columns in place"; bench rows placement/...): it needs an AVX2 batch's worth of
// channels (fewer leave lanes idle and go through padded copies: 3-9x slower than the
// copy at 2 and 4 channels), and a block of channels whose values fit in L2 (a block
// is 64 bytes of each of group_size rows; each phase passes over it several times):
// at 32768 rows per channel the copy's contiguous groups are 1.1-1.4x faster; at 16384
// (an instance form's 128 x 128 planes) the two are even, 0.96-1.03x.
inline bool columns_pay_off(index_t channels, index_t group_size, std::size_t value_bytes) {
  constexpr index_t l2_budget = 256 * 1024;
  return channels * static_cast<index_t>(value_bytes) >= 32 && group_size * 64 <= l2_budget;
}

// The placement of a call on memory in `format` whose logical view is `logical`.
// `fixed_map`: an evaluation with a fixed per-channel map (engine/evaluation.hpp),
// which runs in place wherever each lane can take its own channel. `columns_allowed`:
// the call may walk columns in place (a one-step estimator, one process); `value_bytes`:
// the compute type's size.
inline Placement place(const Layout& logical, MemoryFormat format, bool fixed_map, bool columns_allowed,
                       std::size_t value_bytes) {
  Placement placement;
  placement.layout = logical;
  const index_t outer = logical.outer, channels = logical.channels, inner = logical.inner;
  const bool columns = columns_allowed && !fixed_map && logical.channels_per_group == 1 &&
                       columns_pay_off(channels, logical.group_size(), value_bytes);
  switch (format) {
    case MemoryFormat::contiguous:
      // Groups that are columns of (N, C): no SIMD along a run of one value. A fixed map's
      // lanes take a channel each instead (evaluation.hpp).
      if (logical.groups_span_batch && inner == 1 && channels > 1 && logical.channels_per_group == 1 && !fixed_map) {
        if (columns) {
          placement.columns = Columns{channels, 1, outer, channels, outer * channels};
        } else {
          placement.layout = Layout{1, channels, outer, 1, true};
          placement.transposition = Transposition::packed(1, outer, channels);
          placement.noise_keyed_in_engine_order = false;
        }
      }
      break;
    case MemoryFormat::channels_last:
      if (fixed_map) {
        placement.layout = Layout{outer * inner, channels, 1, 1, true};  // rows of C values
      } else if (columns && logical.groups_span_batch) {
        placement.columns = Columns{channels, outer, inner, channels, inner * channels};
        placement.noise_keyed_logically = true;
      } else if (columns) {  // a group per (sample, channel): one plane of columns per sample
        placement.columns = Columns{channels, 1, inner, channels, 0, outer, inner * channels};
        placement.noise_keyed_logically = true;
      } else {
        placement.transposition = Transposition::packed(outer, inner, channels);
      }
      break;
    case MemoryFormat::column_major:
      if (logical.groups_span_batch) {
        placement.layout = Layout{inner, channels, outer, 1, true};
      } else if (inner == 1) {
        placement.transposition = Transposition::packed(1, channels, outer);
        placement.noise_keyed_in_engine_order = false;
      } else {
        // Per channel c: the inner x N matrix at c * N (rows C * N apart) to N x inner at
        // c * inner (rows C * inner apart).
        placement.transposition = {channels, inner, outer, outer, channels * outer, inner, channels * inner};
        placement.noise_keyed_in_engine_order = false;
      }
      break;
  }
  return placement;
}

// The draws of columns walked in place, as the kernels read them (column_noise.hpp):
// the caller's own (external, in memory order); Philox keyed by memory offset, drawn
// into `scratch`; Philox keyed logically (channels-last), left to each block to draw,
// or with `kept` (Execution::keep_noise) drawn in logical order into `scratch` and
// transposed there. With `kept` the draws land there, in memory order.
template <class T>
inline NoiseSource<T> noise_in_memory_order(const Placement& placement, const NoiseSource<T>& noise, T* scratch, T* kept,
                                            const Kernels<T>& kernels, const Eigen::ThreadPoolDevice* device,
                                            index_t noise_offset) {
  const index_t count = placement.layout.num_elements();
  if (noise.kind == NoiseKind::none) return noise;
  if (noise.kind == NoiseKind::external) {
    if (kept) std::copy(noise.normals, noise.normals + count, kept);
    return noise;
  }
  if (!placement.noise_keyed_logically) {
    T* const target = kept ? kept : scratch;
    kernels.fill_noise(noise, noise_offset, count, target);
    return NoiseSource<T>::external(target);
  }
  if (!kept) return noise;
  const Layout& logical = placement.layout;
  kernels.fill_noise(noise, noise_offset, count, scratch);
  kernels.transpose(Transposition::packed(logical.outer, logical.inner, logical.channels), scratch, kept, false, device);
  return NoiseSource<T>::external(kept);
}

// Scratch values for the draws of columns walked in place (noise_in_memory_order):
// Philox keyed by memory offset drawn there unless kept; keyed logically, drawn there
// in logical order only when kept (else each block draws its own, add_block_noise).
inline index_t column_noise_values(const Placement& placement, bool draws, bool kept) {
  if (!draws || !placement.columns.active()) return 0;
  return kept == placement.noise_keyed_logically ? placement.layout.num_elements() : 0;
}

// Adds each worker thread's block of draws (column_noise.hpp) where blocks draw
// their own: columns keyed logically, drawing, not kept.
template <class T>
inline void add_block_noise(ScratchPlan& scratch, const Placement& placement, bool draws, bool kept,
                            const Eigen::ThreadPoolDevice* device) {
  if (!draws || kept || !placement.columns.active() || !placement.noise_keyed_logically) return;
  scratch.block_noise_values = worker_slots(device) * block_noise_values<T>(placement.columns);
  scratch.block_noise = scratch.add(scratch.block_noise_values, sizeof(T));
}

// The draws the engine reads on a copy: `noise` itself when its keys already match,
// else materialized in `buffer` (drawn in the caller's memory order into `draws`,
// then transposed like the input). `noise_offset`: elements on lower ranks.
template <class T>
inline NoiseSource<T> noise_on_copy(const Placement& placement, const NoiseSource<T>& noise, T* buffer, T* draws,
                                    const Kernels<T>& kernels, const Eigen::ThreadPoolDevice* device,
                                    index_t noise_offset) {
  if (noise.kind == NoiseKind::none) return noise;
  if (noise.kind == NoiseKind::philox && placement.noise_keyed_in_engine_order) return noise;
  const Transposition& t = placement.transposition;
  const T* source = noise.normals;
  if (noise.kind == NoiseKind::philox) {
    kernels.fill_noise(noise, noise_offset, t.elements(), draws);
    source = draws;
  }
  kernels.transpose(t, source, buffer, true, device);
  return NoiseSource<T>::external(buffer);
}

// A forward's scratch: on a copy, the input's copy (with noise, also the draws in
// the engine's layout and a buffer to draw them in); walking columns with noise, the
// draws (noise_in_memory_order, add_block_noise; `kept`: Execution::keep_noise); then
// the engine's parts.
template <class T>
inline ScratchPlan forward_scratch(const Placement& placement, const ForwardPlan<T>& flow, bool reduces_over_ranks,
                                   bool kept, const Eigen::ThreadPoolDevice* device) {
  const Transposition& t = placement.transposition;
  const index_t copies =
      t.active() ? t.elements() * (flow.noisy ? 3 : 1) : column_noise_values(placement, flow.noisy, kept);
  ScratchPlan scratch = forward_scratch_plan<T>(placement.layout, flow, copies, reduces_over_ranks);
  add_block_noise<T>(scratch, placement, flow.noisy, kept, device);
  return scratch;
}

// A backward's scratch: on a copy, the copies of input and grad_output (replaying
// noise: also the draws and their buffer); walking columns and replaying noise, the
// draws (as the forward's, never kept); then the per-channel sums and each worker
// thread's partials (one group's worth, or one block of channels' on columns, for
// groups that fit in cache).
template <class T>
inline ScratchPlan backward_scratch(const Placement& placement, bool replay_noise, bool reduces_over_ranks,
                                    const Eigen::ThreadPoolDevice* device) {
  const Transposition& t = placement.transposition;
  const index_t copies =
      t.active() ? t.elements() * (replay_noise ? 4 : 2) : column_noise_values(placement, replay_noise, false);
  ScratchPlan scratch = backward_scratch_plan<T>(placement.layout, copies, reduces_over_ranks, worker_slots(device),
                                                 placement.columns.active() ? max_column_lanes<T> : 1);
  add_block_noise<T>(scratch, placement, replay_noise, false, device);
  return scratch;
}

// The forward of `rq` (the caller's pointers, the placement's layout), scratch
// carved by forward_scratch. The context records the caller's noise source, so a
// backward replays the same draws.
template <class T>
inline Status forward_placed(const Kernels<T>& kernels, const Placement& placement, ForwardRequest<T> rq,
                             SavedContext<T>& ctx) {
  const Transposition& t = placement.transposition;
  const NoiseSource<T> caller_noise = rq.noise;
  T* const caller_out = rq.out;
  T* const copy = ctx.scratch.transposed;
  if (t.active()) {
    kernels.transpose(t, rq.x, copy, true, rq.device);
    rq.x = copy;
    rq.out = copy;
    if (ForwardPlan<T>::of(rq).noisy)
      rq.noise = noise_on_copy(placement, caller_noise, copy + t.elements(), copy + 2 * t.elements(), kernels, rq.device,
                               rq.global.noise_offset);
  }
  rq.columns = placement.columns;
  if (placement.columns.active() && ForwardPlan<T>::of(rq).noisy) {
    rq.noise = noise_in_memory_order(placement, caller_noise, copy, rq.kept_noise, kernels, rq.device,
                                     rq.global.noise_offset);
    rq.kept_noise = nullptr;  // drawn there already
  }
  NORMNORM_RETURN_IF_ERROR(kernels.forward(rq, ctx));
  if (t.active()) kernels.transpose(t, static_cast<const T*>(copy), caller_out, false, rq.device);
  if (ctx.noise_kind != NoiseKind::none) {
    ctx.noise_kind = caller_noise.kind;
    ctx.noise_seed = caller_noise.seed;
    ctx.noise_call = caller_noise.call;
  }
  return {};
}

// The backward of `rq` (the caller's pointers, the placement's layout), scratch
// carved by backward_scratch. The noise is the forward's, from the context: its kept
// draws, its Philox key, or `external_noise` (the caller's draws); on a copy it is
// materialized when `replay_noise` (grad_weight needs it).
template <class T>
inline void backward_placed(const Kernels<T>& kernels, const Placement& placement, BackwardRequest<T> rq,
                            SavedContext<T>& ctx, const T* external_noise, bool replay_noise) {
  NoiseSource<T> noise;
  if (ctx.noise_kind == NoiseKind::philox) noise = NoiseSource<T>::philox(ctx.noise_seed, ctx.noise_call);
  if (ctx.noise_kind == NoiseKind::external) noise = NoiseSource<T>::external(external_noise);
  const bool kept = ctx.noise_kind != NoiseKind::none && ctx.noise_kept;
  if (kept) noise = NoiseSource<T>::external(ctx.kept_noise.data());  // already in the engine's layout
  rq.noise = noise;
  const Transposition& t = placement.transposition;
  T* const caller_grad_x = rq.grad_x;
  T* const x_copy = ctx.scratch.transposed;
  T* const grad_copy = x_copy + t.elements();
  if (t.active()) {
    // grad_x in place of grad_out's copy.
    kernels.transpose(t, rq.x, x_copy, true, rq.device);
    kernels.transpose(t, rq.grad_out, grad_copy, true, rq.device);
    rq.x = x_copy;
    rq.grad_out = grad_copy;
    rq.grad_x = caller_grad_x ? grad_copy : nullptr;
    if (replay_noise && !kept)
      rq.noise = noise_on_copy(placement, noise, grad_copy + t.elements(), grad_copy + 2 * t.elements(), kernels,
                               rq.device, rq.global.noise_offset);
  }
  rq.columns = placement.columns;
  if (placement.columns.active() && replay_noise && !kept)
    rq.noise = noise_in_memory_order(placement, noise, x_copy, static_cast<T*>(nullptr), kernels, rq.device,
                                     rq.global.noise_offset);
  kernels.backward(rq, ctx);
  if (t.active() && caller_grad_x) kernels.transpose(t, static_cast<const T*>(grad_copy), caller_grad_x, false, rq.device);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
