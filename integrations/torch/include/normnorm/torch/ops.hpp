#pragma once
// normnorm's layers as libtorch autograd functions (the library normnorm::torch).
//
// normal_norm() runs one layer call on CPU tensors (float or double, contiguous or
// channels_last) and records a backward node when autograd needs one; the backward
// calls normnorm's backward with the forward's saved context (input and weight are
// saved, never a copy of the input). The registered ops torch.ops.normnorm.* call it.
//
// Threads: at::get_num_threads() (an Eigen thread pool of that size; results are
// bit-identical for any count). Noise: each training call takes its key from
// PyTorch's default CPU generator, so torch::manual_seed reproduces a run.
// Errors: c10::Error with normnorm's message; running statistics stay untouched.

#include <ATen/Tensor.h>
#include <c10/util/Optional.h>

#include <memory>

#include "normnorm/distributed/reducer.hpp"
#include "normnorm/layer_config.hpp"

namespace normnorm::torch {

// The batch forms' running statistics: undefined tensors when not tracked. Each of
// mean, var, lambda and norm holds C values of the input's dtype, updated in place
// in training; num_batches_tracked is an int64 scalar (counted only when defined).
struct RunningTensors {
  at::Tensor mean, var, lambda, norm, num_batches_tracked;
};

// One call of the layer `config` (its options.affine must match whether weight and
// bias are given; options.track_running_stats whether running.mean is defined).
// `reducer`: null for one process; for a batch form whose batch is split over ranks,
// the Reducer over them (docs/distributed.md), kept alive until the backward has run
// (process_group.hpp makes one over a torch.distributed process group). Over ranks, a
// training call with noise uses rank 0's noise key.
at::Tensor normal_norm(const LayerConfig& config, const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                       const c10::optional<at::Tensor>& bias, const RunningTensors& running, bool training,
                       std::shared_ptr<const Reducer> reducer = nullptr);

// The option spellings the ops take as strings (the Options enum names).
LambdaEstimator parse_estimator(const std::string& name);
EvaluationMap parse_evaluation_map(const std::string& name);

}  // namespace normnorm::torch
