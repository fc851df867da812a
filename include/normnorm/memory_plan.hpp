#pragma once
// The size queries: how many bytes each part of a saved context (context.hpp) will
// hold for a call, before the call. Exact, not bounds: a test compares them with
// what the context holds afterwards. A caller budgeting memory provides the
// workspace from them:
//
//   normnorm::MemoryPlan plan = normnorm::memory_plan<float>(config, shape, Mode::train);
//   buffer = aligned_alloc(normnorm::Workspace::alignment, plan.workspace());
//   context.workspace.provide(buffer, plan.workspace());

#include <algorithm>
#include <cstddef>

#include "normnorm/api.hpp"

namespace normnorm {

struct MemoryPlan {
  std::size_t state = 0;               // per-group statistics and lambda (search traces; with Execution::keep_noise,
                                       // the draws): kept for backward
  std::size_t forward_workspace = 0;   // the forward's scratch
  std::size_t backward_workspace = 0;  // a backward's after it (replaying the noise for grad_weight unless kept)
  std::size_t evaluation_cache = 0;    // batch forms evaluating with running statistics: the folded maps

  // What the workspace grows to over a forward and its backward.
  std::size_t workspace() const { return std::max(forward_workspace, backward_workspace); }
  std::size_t total() const { return state + workspace() + evaluation_cache; }
};

NORMNORM_TARGET_NAMESPACE_BEGIN

// The plan of a forward in `mode` on `shape` (then its backward), or why that call
// would be refused (the shape and option checks of forward).
// T is the storage type (storage.hpp): a 2-byte one adds its widened copies (the
// input in the forward; input and grad_output in the backward) to the workspace.
template <class T>
inline Status try_memory_plan(const LayerConfig& config, const Shape& shape, Mode mode, MemoryFormat format,
                              MemoryPlan& plan, const Execution& execution = {}) {
  using C = compute_t<T>;
  // Over ranks (an Execution with a Reducer, docs/distributed.md) the batch forms keep
  // per-group records of their collectives in the workspace too.
  const bool reduces_over_ranks = detail::reduces_over_ranks(config, mode, execution);
  NORMNORM_RETURN_IF_ERROR(detail::validate_options(config));
  NORMNORM_RETURN_IF_ERROR(detail::validate_shape<C>(config, shape));
  const auto flow = engine::ForwardPlan<C>::of(mode, config.options, config.has_running_stats());
  engine::Placement forward_plan, backward_plan;
  NORMNORM_RETURN_IF_ERROR(detail::place<C>(config, shape, format, flow.fixed_map,
                                            reduces_over_ranks || !execution.columns_in_place, forward_plan));
  // The backward walks columns in place exactly when its forward did (api.hpp).
  NORMNORM_RETURN_IF_ERROR(detail::place<C>(config, shape, format, false, reduces_over_ranks || !forward_plan.columns.active(), backward_plan));
  const auto groups = static_cast<std::size_t>(forward_plan.layout.num_groups());
  plan = MemoryPlan{};
  plan.state = groups * 9 * sizeof(double) + (flow.search ? groups * sizeof(math::LambdaTrace<C>) : 0);
  if (flow.noisy && execution.keep_noise)
    plan.state += static_cast<std::size_t>(forward_plan.layout.num_elements()) * sizeof(C);
  plan.forward_workspace =
      engine::forward_scratch<C>(forward_plan, flow, reduces_over_ranks, execution.keep_noise, execution.device).bytes;
  // A backward replays the noise when the forward drew it, did not keep it, and grad_weight is wanted.
  plan.backward_workspace = engine::backward_scratch<C>(backward_plan, flow.noisy && !execution.keep_noise && config.options.affine,
                                                        reduces_over_ranks, execution.device)
                                .bytes;
  if (flow.fixed_map) plan.evaluation_cache = engine::evaluation_cache_bytes<C>(config.options, forward_plan.layout);
  if constexpr (is_narrow_storage<T>) {
    // (Evaluation with running statistics widens in blocks on the stack: no copy.)
    const std::size_t widened = detail::aligned_bytes<C>(forward_plan.layout.num_elements());
    if (!flow.fixed_map) plan.forward_workspace += widened;
    plan.backward_workspace += 2 * widened;
  }
  return {};
}

template <class T>
inline MemoryPlan memory_plan(const LayerConfig& config, const Shape& shape, Mode mode,
                              MemoryFormat format = MemoryFormat::contiguous, const Execution& execution = {}) {
  MemoryPlan plan;
  detail::raise_if_error(try_memory_plan<T>(config, shape, mode, format, plan, execution));
  return plan;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm
