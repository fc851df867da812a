#pragma once
// normnorm's batch forms as libtorch modules (torch::nn::Module), for C++ training code:
//
//   auto norm = normnorm::torch::BatchNormalNorm2d(64);   // like torch::nn::BatchNorm2d(64)
//   y = norm(x);                                          // autograd through normnorm's backward
//
// Parameters weight, bias; buffers running_mean, running_var, running_lmbda, running_norm,
// num_batches_tracked (the names of the Python modules and the paper's layers).
// Link normnorm::torch.

#include <cmath>
#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "normnorm/torch/ops.hpp"

namespace normnorm::torch {

class BatchNormalNormImpl : public ::torch::nn::Module {
 public:
  BatchNormalNormImpl(Form form, std::int64_t num_features, Options options)
      : config_(form == Form::batch_1d ? LayerConfig::batch_normal_norm_1d(num_features, options)
                                       : LayerConfig::batch_normal_norm_2d(num_features, options)) {
    if (options.affine) {
      weight = register_parameter("weight", ::torch::ones({num_features}));
      bias = register_parameter("bias", ::torch::zeros({num_features}));
    }
    running_mean = register_buffer("running_mean", ::torch::zeros({num_features}));
    running_var = register_buffer("running_var", ::torch::ones({num_features}));
    running_lmbda = register_buffer("running_lmbda", ::torch::ones({num_features}));
    running_norm = register_buffer("running_norm", ::torch::full({num_features}, std::sqrt(2.0 / M_PI)));
    num_batches_tracked = register_buffer("num_batches_tracked", ::torch::zeros({}, ::torch::kLong));
  }

  at::Tensor forward(const at::Tensor& input) {
    RunningTensors running;
    if (config_.options.track_running_stats)
      running = {running_mean, running_var, running_lmbda, running_norm, num_batches_tracked};
    return normal_norm(config_, input, weight.defined() ? c10::optional<at::Tensor>(weight) : c10::nullopt,
                       bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt, running, is_training());
  }

  const LayerConfig& config() const { return config_; }

  at::Tensor weight, bias, running_mean, running_var, running_lmbda, running_norm, num_batches_tracked;

 private:
  LayerConfig config_;
};

// (N, C, H, W): one group per channel over N, H, W.
class BatchNormalNorm2dImpl : public BatchNormalNormImpl {
 public:
  explicit BatchNormalNorm2dImpl(std::int64_t num_features, Options options = default_options(Form::batch_2d))
      : BatchNormalNormImpl(Form::batch_2d, num_features, options) {}
};

// (N, C): one group per channel over N.
class BatchNormalNorm1dImpl : public BatchNormalNormImpl {
 public:
  explicit BatchNormalNorm1dImpl(std::int64_t num_features, Options options = default_options(Form::batch_1d))
      : BatchNormalNormImpl(Form::batch_1d, num_features, options) {}
};

// The module holders (what TORCH_MODULE would declare; spelled out because inside
// namespace normnorm the macro's unqualified torch:: would name this namespace).
class BatchNormalNorm2d : public ::torch::nn::ModuleHolder<BatchNormalNorm2dImpl> {
 public:
  using ::torch::nn::ModuleHolder<BatchNormalNorm2dImpl>::ModuleHolder;
  using Impl = BatchNormalNorm2dImpl;
};
class BatchNormalNorm1d : public ::torch::nn::ModuleHolder<BatchNormalNorm1dImpl> {
 public:
  using ::torch::nn::ModuleHolder<BatchNormalNorm1dImpl>::ModuleHolder;
  using Impl = BatchNormalNorm1dImpl;
};

}  // namespace normnorm::torch
