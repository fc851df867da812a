// normnorm::Reducer over a torch.distributed process group, and the synchronized
// batch forms' ops' entry point (process_group.hpp).

#include "normnorm/torch/process_group.hpp"

#include <ATen/ATen.h>

namespace normnorm::torch {

ProcessGroupReducer::ProcessGroupReducer(c10::intrusive_ptr<c10d::ProcessGroup> process_group)
    : process_group_(std::move(process_group)) {
  TORCH_CHECK(process_group_, "normnorm: ProcessGroupReducer: the process group is null");
}

int ProcessGroupReducer::rank() const { return process_group_->getRank(); }
int ProcessGroupReducer::size() const { return process_group_->getSize(); }

const double* ProcessGroupReducer::allgather(const double* values, std::size_t count) const {
  const auto n = static_cast<int64_t>(count);
  gathered_ = at::empty({size(), n}, at::kDouble);
  if (count == 0) return gathered_.data_ptr<double>();  // every rank passes the same count: no call anywhere
  // The backend reads `values` before wait() returns; its outputs are views of one block.
  std::vector<at::Tensor> inputs{at::from_blob(const_cast<double*>(values), {n}, at::kDouble)};
  std::vector<std::vector<at::Tensor>> outputs{gathered_.unbind(0)};
  process_group_->allgather(outputs, inputs)->wait();
  return gathered_.data_ptr<double>();
}

at::Tensor sync_normal_norm(const LayerConfig& config, const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                            const c10::optional<at::Tensor>& bias, const RunningTensors& running, bool training,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& process_group) {
  TORCH_CHECK(is_batch_form(config.form), "normnorm: ", config.name(),
              ": only the batch forms reduce over a process group");
  return normal_norm(config, input, weight, bias, running, training,
                     std::make_shared<const ProcessGroupReducer>(process_group));
}

}  // namespace normnorm::torch
