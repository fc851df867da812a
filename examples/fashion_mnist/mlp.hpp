#pragma once
// The fully connected network of the paper's code repository (its default model: two
// hidden layers of 784 units, trained there on MNIST; here on Fashion-MNIST), with
// hand-written backpropagation:
//
//   x (N, 784) -> Linear(784, 784) -> norm -> ReLU -> Linear(784, 784) -> norm -> ReLU
//              -> Linear(784, 10) -> softmax cross-entropy
//
// Eigen does the dense layers; normnorm does the two normalization layers. This is how
// an embedder with their own autograd wires normnorm in: every activation is an Eigen
// matrix, and normnorm's forward/backward read and write those matrices' memory through
// raw pointers and a Shape.
//
// Why the module class (normnorm::BatchNormalNorm1d) and not the raw-pointer
// normnorm::forward/backward: the module owns exactly the state this program would
// otherwise carry by hand for each layer -- gamma and beta, their gradients, the four
// running statistics, the saved context between forward and backward, and the noise
// counter that must advance once per training call -- and its forward/backward take the
// same (pointer, Shape) arguments as the raw API. The raw functions are the better fit
// when the host framework already owns parameter storage (then ForwardArgs points at
// the framework's tensors); here it would only add bookkeeping.
//
// Activations are row-major (N, features) matrices: element (n, c) sits at n * C + c,
// which is the (N, C) row-major layout normnorm expects for BatchNormalNorm1d.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Core>
#include <normnorm/normnorm.hpp>

namespace fashion_mnist {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

// Uniform floats in [low, high) from mt19937_64, whose output sequence the C++ standard
// fixes: the same seed gives the same weights with every standard library.
inline float uniform(std::mt19937_64& rng, float low, float high) {
  const float unit = static_cast<float>(rng() >> 40) * (1.0f / 16777216.0f);
  return low + (high - low) * unit;
}

// torch.nn.Linear: y = x W^T + b, W is (out, in). PyTorch's default initialization:
// W and b uniform in +-1/sqrt(in).
struct Linear {
  Matrix weight, grad_weight, velocity_weight;
  RowVector bias, grad_bias, velocity_bias;

  Linear(int in, int out, std::mt19937_64& rng)
      : weight(out, in), grad_weight(out, in), velocity_weight(Matrix::Zero(out, in)),
        bias(out), grad_bias(out), velocity_bias(RowVector::Zero(out)) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    for (Eigen::Index i = 0; i < weight.size(); ++i) weight.data()[i] = uniform(rng, -bound, bound);
    for (Eigen::Index i = 0; i < bias.size(); ++i) bias[i] = uniform(rng, -bound, bound);
  }

  void forward(const Matrix& x, Matrix& y) const {
    y.noalias() = x * weight.transpose();
    y.rowwise() += bias;
  }
  // grad_weight = grad_y^T x, grad_bias = column sums of grad_y, grad_x = grad_y W.
  void backward(const Matrix& x, const Matrix& grad_y, Matrix* grad_x) {
    grad_weight.noalias() = grad_y.transpose() * x;
    grad_bias = grad_y.colwise().sum();
    if (grad_x) grad_x->noalias() = grad_y * weight;
  }
};

// SGD with momentum, as torch.optim.SGD (no dampening, no weight decay):
//   velocity = momentum * velocity + grad;  param -= lr * velocity.
template <class Param, class Grad, class Velocity>
void sgd_update(Param&& param, const Grad& grad, Velocity&& velocity, float lr, float momentum) {
  velocity = momentum * velocity + grad;
  param -= lr * velocity;
}

// Where the time of a training step goes, in seconds.
struct StepTimes {
  double normalization = 0;  // normnorm forward + backward of both layers
  double total = 0;          // the whole step: dense layers, loss, normalization, update
};

class Mlp {
 public:
  static constexpr int inputs = 784, hidden = 784, classes = 10;

  // Every model of a comparison gets the same weight_seed, so they start from the same
  // weights. noise_seed keys normnorm's training noise (unused without it).
  Mlp(const normnorm::Options& norm_options, std::uint64_t weight_seed, std::uint64_t noise_seed)
      : rng_(weight_seed),
        fc1_(inputs, hidden, rng_),
        fc2_(hidden, hidden, rng_),
        fc3_(hidden, classes, rng_),
        norm1_(norm_options, noise_seed),
        norm2_(norm_options, noise_seed + 1) {}

  // Forward through the network; keeps every activation for backward and for probes.
  void forward(const Matrix& x, bool training) {
    for (NormLayer* norm : {&norm1_, &norm2_}) norm->module.train(training);
    fc1_.forward(x, z1_);
    normalize(norm1_, z1_, a1_);
    r1_ = a1_.cwiseMax(0.0f);
    fc2_.forward(r1_, z2_);
    normalize(norm2_, z2_, a2_);
    r2_ = a2_.cwiseMax(0.0f);
    fc3_.forward(r2_, logits_);
  }

  // One SGD step on a batch; returns the batch's mean cross-entropy.
  float train_step(const Matrix& x, const int* labels, float lr, float momentum) {
    const auto start = Clock::now();
    forward(x, /*training=*/true);
    const float loss = softmax_cross_entropy(logits_, labels, grad_logits_);

    fc3_.backward(r2_, grad_logits_, &grad_r2_);
    grad_a2_ = (a2_.array() > 0.0f).select(grad_r2_.array(), 0.0f);  // ReLU
    normalize_backward(norm2_, z2_, grad_a2_, grad_z2_);
    fc2_.backward(r1_, grad_z2_, &grad_r1_);
    grad_a1_ = (a1_.array() > 0.0f).select(grad_r1_.array(), 0.0f);
    normalize_backward(norm1_, z1_, grad_a1_, grad_z1_);
    fc1_.backward(x, grad_z1_, nullptr);  // the input needs no gradient

    for (Linear* fc : {&fc1_, &fc2_, &fc3_}) {
      sgd_update(fc->weight, fc->grad_weight, fc->velocity_weight, lr, momentum);
      sgd_update(fc->bias, fc->grad_bias, fc->velocity_bias, lr, momentum);
    }
    for (NormLayer* norm : {&norm1_, &norm2_}) {
      // gamma and beta live in the module's std::vectors; map them for the update.
      auto& module = norm->module;
      Eigen::Map<RowVector> gamma(module.weight().data(), hidden), beta(module.bias().data(), hidden);
      Eigen::Map<const RowVector> grad_gamma(module.grad_weight().data(), hidden),
          grad_beta(module.grad_bias().data(), hidden);
      sgd_update(gamma, grad_gamma, norm->velocity_weight, lr, momentum);
      sgd_update(beta, grad_beta, norm->velocity_bias, lr, momentum);
    }
    times_.total += seconds_since(start);
    return loss;
  }

  // Softmax cross-entropy, averaged over the batch; grad = (softmax - one_hot) / N.
  static float softmax_cross_entropy(const Matrix& logits, const int* labels, Matrix& grad) {
    const Eigen::Index n = logits.rows();
    grad = (logits.colwise() - logits.rowwise().maxCoeff()).array().exp();
    grad.array().colwise() /= grad.rowwise().sum().array();
    double loss = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      loss -= std::log(std::max(grad(i, labels[i]), 1e-30f));
      grad(i, labels[i]) -= 1.0f;
    }
    grad /= static_cast<float>(n);
    return static_cast<float>(loss / static_cast<double>(n));
  }

  const Matrix& logits() const { return logits_; }
  // The input (pre-norm) and output (post-affine) of normalization layer 1 or 2, from the
  // last forward.
  const Matrix& norm_input(int layer) const { return layer == 1 ? z1_ : z2_; }
  const Matrix& norm_output(int layer) const { return layer == 1 ? a1_ : a2_; }
  normnorm::BatchNormalNorm1d<float>& norm(int layer) { return layer == 1 ? norm1_.module : norm2_.module; }

  // Where normnorm runs: by default on the calling thread; with a ThreadPoolDevice, each
  // call spreads its groups (here: the 784 channels) over the pool's threads.
  void set_execution(const normnorm::Execution& execution) {
    for (NormLayer* norm : {&norm1_, &norm2_}) norm->module.set_execution(execution);
  }

  const StepTimes& times() const { return times_; }
  void reset_times() { times_ = {}; }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // A normalization layer and its optimizer state.
  struct NormLayer {
    normnorm::BatchNormalNorm1d<float> module;
    RowVector velocity_weight = RowVector::Zero(hidden), velocity_bias = RowVector::Zero(hidden);
    NormLayer(const normnorm::Options& options, std::uint64_t noise_seed) : module(hidden, options, noise_seed) {}
  };

  // normnorm reads z's memory as an (N, C) row-major tensor and writes a's.
  void normalize(NormLayer& norm, const Matrix& z, Matrix& a) {
    const auto start = Clock::now();
    a.resize(z.rows(), z.cols());
    norm.module.forward(z.data(), normnorm::Shape{z.rows(), z.cols()}, a.data());
    if (norm.module.is_training()) times_.normalization += seconds_since(start);
  }
  // grad_z from z (the forward's input) and grad_a; also fills norm.grad_weight()/grad_bias().
  void normalize_backward(NormLayer& norm, const Matrix& z, const Matrix& grad_a, Matrix& grad_z) {
    const auto start = Clock::now();
    grad_z.resize(z.rows(), z.cols());
    norm.module.backward(z.data(), normnorm::Shape{z.rows(), z.cols()}, grad_a.data(), grad_z.data());
    times_.normalization += seconds_since(start);
  }

  std::mt19937_64 rng_;
  Linear fc1_, fc2_, fc3_;
  NormLayer norm1_, norm2_;
  Matrix z1_, a1_, r1_, z2_, a2_, r2_, logits_;
  Matrix grad_logits_, grad_r2_, grad_a2_, grad_z2_, grad_r1_, grad_a1_, grad_z1_;
  StepTimes times_;
};

}  // namespace fashion_mnist
