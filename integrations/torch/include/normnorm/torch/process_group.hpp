#pragma once
// normnorm's batch forms over a batch split across the ranks of a torch.distributed
// process group (docs/torch.md, "Synchronized batch statistics"; docs/distributed.md).
//
// ProcessGroupReducer is normnorm::Reducer over a c10d::ProcessGroup: each of the
// engine's collectives is one ProcessGroup::allgather of a CPU double tensor, waited
// for before it returns (Gloo on CPU; any backend whose allgather takes CPU tensors).
// normnorm adds the gathered records itself, in rank order, so the result does not
// depend on what the backend does inside.
//
// sync_normal_norm() is normal_norm() with the reducer: the forward and the backward
// (on the autograd thread) reduce over the group. Every training call exchanges rank 0's
// noise key in one more collective of 4 values; with noise, every rank draws its own key
// from its default CPU generator first (so it advances as one process's would).

#include <cstddef>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <normnorm/distributed/reducer.hpp>

#include "normnorm/torch/ops.hpp"

namespace normnorm::torch {

class ProcessGroupReducer final : public Reducer {
 public:
  explicit ProcessGroupReducer(c10::intrusive_ptr<c10d::ProcessGroup> process_group);
  int rank() const override;
  int size() const override;
  // Throws c10::Error (Python: RuntimeError) when the backend's allgather fails.
  const double* allgather(const double* values, std::size_t count) const override;

 private:
  c10::intrusive_ptr<c10d::ProcessGroup> process_group_;
  mutable at::Tensor gathered_;  // (size, count) doubles: the last call's result
};

// One call of a batch form (config.form batch_1d, batch_2d or batch_3d) whose batch is
// split over `process_group`'s ranks; the same arguments as normal_norm otherwise.
// Evaluation with running statistics makes no collective.
at::Tensor sync_normal_norm(const LayerConfig& config, const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                            const c10::optional<at::Tensor>& bias, const RunningTensors& running, bool training,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& process_group);

}  // namespace normnorm::torch
