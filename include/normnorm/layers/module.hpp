#pragma once
// Module classes for users who want a one-liner: they own the parameters, the
// running statistics, the saved context and the noise state, and switch between
// train() and eval() like PyTorch modules. Each is a thin name over
// NormalNormModule, which calls the raw-pointer API.
//
// Threads: forward, backward, train and eval lock the module, so threads sharing
// one module take turns (each call sees whole state, never a half-written one).
// infer() is const: any number of threads may run it at once, alongside each
// other and evaluation forwards. The accessors hand out the module's own buffers
// and are not locked: do not change parameters or statistics (nor train) while
// another thread runs a call.

#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include <unsupported/Eigen/CXX11/Tensor>

#include "normnorm/api.hpp"
#include "normnorm/evaluate.hpp"

namespace normnorm {

// T is the tensors' storage type (storage.hpp); parameters, running statistics and the
// saved context are in its compute type C (float for Eigen::bfloat16 and Eigen::half).
template <class T>
class NormalNormModule {
 public:
  using C = compute_t<T>;

  // Validates the options: std::invalid_argument on a bad config. Built without
  // exceptions, the module keeps the error instead (status()) and every try_ call
  // returns it.
  explicit NormalNormModule(LayerConfig config, std::uint64_t seed = 0) : config_(std::move(config)), seed_(seed) {
    status_ = detail::validate_options(config_);
#if NORMNORM_EXCEPTIONS
    detail::raise_if_error(status_);
#endif
    if (!status_.ok()) return;
    const auto affine = static_cast<std::size_t>(config_.num_affine());
    if (config_.options.affine) {
      weight_.assign(affine, C(1));
      bias_.assign(affine, C(0));
      grad_weight_.assign(affine, C(0));
      grad_bias_.assign(affine, C(0));
    }
    if (config_.has_running_stats()) {
      const auto channels = static_cast<std::size_t>(config_.num_running());
      running_mean_.resize(channels);
      running_var_.resize(channels);
      running_lambda_.resize(channels);
      running_norm_.resize(channels);
      reset_running_stats();
    }
  }
  const Status& status() const { return status_; }  // the constructor's verdict

  // eval() also prepares what infer() needs (batch forms with running statistics;
  // if that fails, infer() reports it).
  void train(bool on = true) {
    std::lock_guard<std::mutex> lock(call_lock_.mutex);
    training_ = on;
    if (!on && status_.ok() && uses_evaluation_cache()) {
      std::unique_lock<std::shared_mutex> cache_lock(call_lock_.cache_mutex);
      (void)prepare_cache();
    }
  }
  void eval() { train(false); }
  bool is_training() const {
    std::lock_guard<std::mutex> lock(call_lock_.mutex);
    return training_;
  }
  Mode mode() const { return is_training() ? Mode::train : Mode::eval; }

  const LayerConfig& config() const { return config_; }
  void set_execution(const Execution& execution) {
    std::lock_guard<std::mutex> lock(call_lock_.mutex);
    execution_ = execution;
  }

  // output = layer(input). In training, draws noise for call training_calls()
  // of this module's seed, updates the running statistics, and saves what
  // backward needs. On error nothing changes (outputs, statistics, noise counter).
  void forward(const T* input, const Shape& shape, T* output, MemoryFormat format = MemoryFormat::contiguous) {
    detail::raise_if_error(try_forward(input, shape, output, format));
  }
  Status try_forward(const T* input, const Shape& shape, T* output, MemoryFormat format = MemoryFormat::contiguous) {
    if (!status_.ok()) return status_;
    std::lock_guard<std::mutex> lock(call_lock_.mutex);
    ForwardArgs<T> args;
    args.memory_format = format;
    args.input = input;
    args.shape = shape;
    args.output = output;
    args.weight = {weight_.data(), static_cast<index_t>(weight_.size())};
    args.bias = {bias_.data(), static_cast<index_t>(bias_.size())};
    args.running = running_view();
    args.noise = NoiseSource<C>::philox(seed_, training_calls_);
    NORMNORM_RETURN_IF_ERROR(normnorm::try_forward(config_, training_ ? Mode::train : Mode::eval, args, context_, execution_));
    if (training_) ++training_calls_;
    return {};
  }

  // output = layer(input) in evaluation mode (running statistics, no noise),
  // whatever train()/eval() says, bit-identical to forward() in evaluation. Const and
  // safe to call from any number of threads at once. Batch forms with running
  // statistics read a cache prepared by eval() (rebuilt here once if the parameters
  // changed since): no heap allocation. Other configurations estimate statistics per
  // call in a per-thread context, which allocates on a thread's first call with a
  // larger shape only.
  void infer(const T* input, const Shape& shape, T* output, MemoryFormat format = MemoryFormat::contiguous) const {
    detail::raise_if_error(try_infer(input, shape, output, format));
  }
  Status try_infer(const T* input, const Shape& shape, T* output, MemoryFormat format = MemoryFormat::contiguous) const {
    if (!status_.ok()) return status_;
    if (uses_evaluation_cache()) {
      std::shared_lock<std::shared_mutex> reading(call_lock_.cache_mutex);
      if (!cache_current()) {
        reading.unlock();
        {
          std::unique_lock<std::shared_mutex> writing(call_lock_.cache_mutex);
          if (!cache_current()) NORMNORM_RETURN_IF_ERROR(prepare_cache());
        }
        reading.lock();
      }
      return try_evaluate(config_, EvaluateArgs<T>{input, shape, output, format}, cache_, execution_);
    }
    thread_local SavedContext<C> scratch;
    ForwardArgs<T> args;
    args.memory_format = format;
    args.input = input;
    args.shape = shape;
    args.output = output;
    args.weight = {weight_.data(), static_cast<index_t>(weight_.size())};
    args.bias = {bias_.data(), static_cast<index_t>(bias_.size())};
    args.running = const_running_view();  // evaluation only reads them
    return normnorm::try_forward(config_, Mode::eval, args, scratch, execution_);
  }

  // grad_input from the forward's input and grad_output; grad_weight() and
  // grad_bias() are overwritten (not accumulated). grad_input may be null.
  void backward(const T* input, const Shape& shape, const T* grad_output, T* grad_input,
                MemoryFormat format = MemoryFormat::contiguous) {
    detail::raise_if_error(try_backward(input, shape, grad_output, grad_input, format));
  }
  Status try_backward(const T* input, const Shape& shape, const T* grad_output, T* grad_input,
                      MemoryFormat format = MemoryFormat::contiguous) {
    if (!status_.ok()) return status_;
    std::lock_guard<std::mutex> lock(call_lock_.mutex);
    BackwardArgs<T> args;
    args.memory_format = format;
    args.input = input;
    args.shape = shape;
    args.grad_output = grad_output;
    args.weight = {weight_.data(), static_cast<index_t>(weight_.size())};
    args.grad_input = grad_input;
    args.grad_weight = grad_weight_.data();
    args.grad_bias = grad_bias_.data();
    return normnorm::try_backward(config_, args, context_, execution_);
  }

  // Eigen tensors, row-major (PyTorch's order) or column-major (Eigen's default;
  // engine/placement.hpp says how the engine walks it; for the layer form, weight and
  // bias then follow normalized_shape in column-major order too).
  template <int Rank, int Storage>
  Eigen::Tensor<T, Rank, Storage> forward(const Eigen::Tensor<T, Rank, Storage>& input) {
    Eigen::Tensor<T, Rank, Storage> output(input.dimensions());
    forward(input.data(), shape_of(input), output.data(), format_of<Storage>());
    return output;
  }
  template <int Rank, int Storage>
  Eigen::Tensor<T, Rank, Storage> backward(const Eigen::Tensor<T, Rank, Storage>& input,
                                           const Eigen::Tensor<T, Rank, Storage>& grad_output) {
    if (shape_of(input) != shape_of(grad_output))
      detail::raise(Status::invalid_argument(std::string("normnorm: ") + config_.name() + ": grad_output shape " +
                                  shape_of(grad_output).to_string() + " differs from input shape " + shape_of(input).to_string()));
    Eigen::Tensor<T, Rank, Storage> grad_input(input.dimensions());
    backward(input.data(), shape_of(input), grad_output.data(), grad_input.data(), format_of<Storage>());
    return grad_input;
  }

  std::vector<C>& weight() { return weight_; }
  std::vector<C>& bias() { return bias_; }
  const std::vector<C>& grad_weight() const { return grad_weight_; }
  const std::vector<C>& grad_bias() const { return grad_bias_; }
  // The running statistics (batch forms with track_running_stats; empty otherwise):
  // their values can be changed, their sizes cannot (each holds num_running() values).
  Span<C> running_mean() { return span_of(running_mean_); }
  Span<C> running_var() { return span_of(running_var_); }
  Span<C> running_lambda() { return span_of(running_lambda_); }
  Span<C> running_norm() { return span_of(running_norm_); }
  Span<const C> running_mean() const { return span_of(running_mean_); }
  Span<const C> running_var() const { return span_of(running_var_); }
  Span<const C> running_lambda() const { return span_of(running_lambda_); }
  Span<const C> running_norm() const { return span_of(running_norm_); }
  std::int64_t num_batches_tracked() const { return num_batches_tracked_; }
  // E.g. from a checkpoint: a negative count is refused (invalid_argument), nothing changed.
  void set_num_batches_tracked(std::int64_t count) { detail::raise_if_error(try_set_num_batches_tracked(count)); }
  Status try_set_num_batches_tracked(std::int64_t count) {
    if (count < 0)
      return Status::invalid_argument(std::string("normnorm: ") + config_.name() +
                                      ": num_batches_tracked must be >= 0, got " + std::to_string(count));
    num_batches_tracked_ = count;
    return {};
  }
  void reset_running_stats() {
    if (status_.ok() && config_.has_running_stats()) reset_running_stats_of(running_view(), config_.num_running());
  }

  const SavedContext<C>& context() const { return context_; }
  std::uint64_t noise_seed() const { return seed_; }
  std::uint64_t training_calls() const { return training_calls_; }

 private:
  template <int Rank, int Storage>
  static Shape shape_of(const Eigen::Tensor<T, Rank, Storage>& tensor) {
    return Shape(tensor.dimensions().data(), Rank);
  }
  template <int Storage>
  static constexpr MemoryFormat format_of() {
    return (Storage & Eigen::RowMajor) ? MemoryFormat::contiguous : MemoryFormat::column_major;
  }
  static Span<const C> span_of(const std::vector<C>& values) {
    return {values.data(), static_cast<index_t>(values.size())};
  }
  static Span<C> span_of(std::vector<C>& values) { return {values.data(), static_cast<index_t>(values.size())}; }
  bool uses_evaluation_cache() const { return config_.has_running_stats() && config_.options.power_transform; }
  RunningStats<C> const_running_view() const { return const_cast<NormalNormModule*>(this)->running_view(); }
  bool cache_current() const {
    return cache_.ready && engine::evaluation_cache_current(cache_, config_.options, config_.num_running(), affine_data(weight_),
                                                           affine_data(bias_), const_running_view(),
                                                           detail::cache_wants_tables<C>(config_));
  }
  const C* affine_data(const std::vector<C>& values) const { return config_.options.affine ? values.data() : nullptr; }
  // Under the cache's unique lock.
  Status prepare_cache() const {
    return try_prepare_evaluation(config_, Span<const C>{weight_.data(), static_cast<index_t>(weight_.size())},
                                  Span<const C>{bias_.data(), static_cast<index_t>(bias_.size())}, const_running_view(),
                                  cache_);
  }
  static void reset_running_stats_of(const RunningStats<C>& stats, index_t channels) {
    normnorm::reset_running_stats(stats, channels);
  }
  RunningStats<C> running_view() {
    RunningStats<C> view;
    if (!config_.has_running_stats()) return view;
    view.mean = running_mean_.data();
    view.var = running_var_.data();
    view.lambda = running_lambda_.data();
    view.norm = running_norm_.data();
    view.num_batches_tracked = &num_batches_tracked_;
    view.size = static_cast<index_t>(running_mean_.size());
    return view;
  }

  // Locks that copy and move as fresh ones: a copied module is a new module.
  struct CallLock {
    mutable std::mutex mutex;               // forward, backward, train/eval
    mutable std::shared_mutex cache_mutex;  // infer reads cache_, a rebuild writes it
    CallLock() = default;
    CallLock(const CallLock&) {}
    CallLock& operator=(const CallLock&) { return *this; }
  };

  LayerConfig config_;
  Status status_;
  mutable CallLock call_lock_;
  Execution execution_{};
  bool training_ = true;
  std::uint64_t seed_ = 0;
  std::uint64_t training_calls_ = 0;
  std::vector<C> weight_, bias_, grad_weight_, grad_bias_;
  std::vector<C> running_mean_, running_var_, running_lambda_, running_norm_;
  std::int64_t num_batches_tracked_ = 0;
  SavedContext<C> context_;
  mutable EvaluationCache<C> cache_;  // infer(): prepared by eval()
};

template <class T = float>
class BatchNormalNorm1d : public NormalNormModule<T> {
 public:
  explicit BatchNormalNorm1d(index_t num_features, Options options = default_options(Form::batch_1d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::batch_normal_norm_1d(num_features, options), seed) {}
};

template <class T = float>
class BatchNormalNorm2d : public NormalNormModule<T> {
 public:
  explicit BatchNormalNorm2d(index_t num_features, Options options = default_options(Form::batch_2d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::batch_normal_norm_2d(num_features, options), seed) {}
};

template <class T = float>
class LayerNormalNorm : public NormalNormModule<T> {
 public:
  explicit LayerNormalNorm(Shape normalized_shape, Options options = default_options(Form::layer), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::layer_normal_norm(normalized_shape, options), seed) {}
};

template <class T = float>
class GroupNormalNorm : public NormalNormModule<T> {
 public:
  GroupNormalNorm(index_t num_groups, index_t num_channels, Options options = default_options(Form::group), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::group_normal_norm(num_groups, num_channels, options), seed) {}
};

template <class T = float>
class InstanceNormalNorm2d : public NormalNormModule<T> {
 public:
  explicit InstanceNormalNorm2d(index_t num_features, Options options = default_options(Form::instance_2d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::instance_normal_norm_2d(num_features, options), seed) {}
};

template <class T = float>
class BatchNormalNorm3d : public NormalNormModule<T> {
 public:
  explicit BatchNormalNorm3d(index_t num_features, Options options = default_options(Form::batch_3d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::batch_normal_norm_3d(num_features, options), seed) {}
};

template <class T = float>
class InstanceNormalNorm1d : public NormalNormModule<T> {
 public:
  explicit InstanceNormalNorm1d(index_t num_features, Options options = default_options(Form::instance_1d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::instance_normal_norm_1d(num_features, options), seed) {}
};

template <class T = float>
class InstanceNormalNorm3d : public NormalNormModule<T> {
 public:
  explicit InstanceNormalNorm3d(index_t num_features, Options options = default_options(Form::instance_3d), std::uint64_t seed = 0)
      : NormalNormModule<T>(LayerConfig::instance_normal_norm_3d(num_features, options), seed) {}
};

}  // namespace normnorm
