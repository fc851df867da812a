#pragma once
// Forward and backward functors on caller-owned Eigen::TensorMaps (row-major or
// column-major, PyTorch axis order), in the spirit of TensorFlow's Eigen kernel functors:
// stateless apart from the layer configuration, so an embedder's autograd owns
// every buffer.
//
//   normnorm::eigen::Forward<float> forward{config};
//   forward(Mode::train, input, output, {weight, bias}, running, noise, context);
//   normnorm::eigen::Backward<float> backward{config};
//   backward(input, grad_output, weight, grad_input, {grad_weight, grad_bias}, context);
//
// Each also has try_call(...), with the same arguments, returning the Status
// instead of throwing (for -fno-exceptions builds). Eigen::bfloat16 and Eigen::half
// tensors take float parameters, statistics and context (storage.hpp).

#include <unsupported/Eigen/CXX11/Tensor>

#include "normnorm/api.hpp"

namespace normnorm::eigen {

template <class T, int Rank>
using ConstTensorMap = Eigen::TensorMap<const Eigen::Tensor<T, Rank, Eigen::RowMajor>>;
template <class T, int Rank>
using TensorMap = Eigen::TensorMap<Eigen::Tensor<T, Rank, Eigen::RowMajor>>;

// Column-major maps (Eigen's default layout), dimensions in the logical (N, C, ...)
// order: the engine walks them as they are or through a copy of its choosing
// (engine/placement.hpp). For the layer form, weight and bias then follow
// normalized_shape in column-major order too.
template <class T, int Rank>
using ConstColMajorMap = Eigen::TensorMap<const Eigen::Tensor<T, Rank, Eigen::ColMajor>>;
template <class T, int Rank>
using ColMajorMap = Eigen::TensorMap<Eigen::Tensor<T, Rank, Eigen::ColMajor>>;

// A 1-D parameter vector (weight, bias, or one running statistic).
template <class T>
using ConstVectorMap = Eigen::TensorMap<const Eigen::Tensor<T, 1, Eigen::RowMajor>>;
template <class T>
using VectorMap = Eigen::TensorMap<Eigen::Tensor<T, 1, Eigen::RowMajor>>;

template <class Map>
inline Shape shape_of(const Map& map) {
  const auto& dims = map.dimensions();
  return Shape(dims.data(), static_cast<int>(dims.size()));
}

// The logical (N, C, ...) shape of a map whose dimensions are in memory order:
// channels-last maps are (N, ..., C).
inline Shape logical_shape(const Shape& dims, MemoryFormat format) {
  if (format != MemoryFormat::channels_last || dims.rank() < 3) return dims;
  Shape shape = dims;
  shape[1] = dims[dims.rank() - 1];
  for (int axis = 2; axis < dims.rank(); ++axis) shape[axis] = dims[axis - 1];
  return shape;
}

template <class T>
inline Span<const T> span_of(const ConstVectorMap<T>* vector) {
  if (!vector) return {};
  return {vector->data(), static_cast<index_t>(vector->size())};
}

// Weight and bias, flattened (the layer form's normalized_shape in row-major order).
// Their lengths are checked by forward/backward, whose errors name the layer.
template <class T>
struct AffineMaps {
  Span<const T> weight, bias;
  AffineMaps() = default;
  AffineMaps(ConstVectorMap<T> w, ConstVectorMap<T> b)
      : weight{w.data(), static_cast<index_t>(w.size())}, bias{b.data(), static_cast<index_t>(b.size())} {}
};

// T is the tensors' storage type (storage.hpp); parameters, statistics, noise and the
// context are in its compute type C (float for Eigen::bfloat16 and Eigen::half).
template <class T>
struct Forward {
  using C = compute_t<T>;
  LayerConfig config;
  Execution execution{};
  MemoryFormat memory_format = MemoryFormat::contiguous;  // channels_last: the map's dimensions are (N, [D,] H, W, C)

  template <int Rank>
  void operator()(Mode mode, ConstTensorMap<T, Rank> input, TensorMap<T, Rank> output, const AffineMaps<C>& affine,
                  const RunningStats<C>& running, const NoiseSource<C>& noise, SavedContext<C>& context) const {
    detail::raise_if_error(try_call(mode, input, output, affine, running, noise, context));
  }
  template <int Rank>
  void operator()(Mode mode, ConstColMajorMap<T, Rank> input, ColMajorMap<T, Rank> output, const AffineMaps<C>& affine,
                  const RunningStats<C>& running, const NoiseSource<C>& noise, SavedContext<C>& context) const {
    detail::raise_if_error(try_call(mode, input, output, affine, running, noise, context));
  }

  template <int Rank>
  Status try_call(Mode mode, ConstTensorMap<T, Rank> input, TensorMap<T, Rank> output, const AffineMaps<C>& affine,
                  const RunningStats<C>& running, const NoiseSource<C>& noise, SavedContext<C>& context) const {
    return call(mode, input.data(), shape_of(input), output.data(), shape_of(output), memory_format, affine, running,
                noise, context);
  }
  template <int Rank>
  Status try_call(Mode mode, ConstColMajorMap<T, Rank> input, ColMajorMap<T, Rank> output, const AffineMaps<C>& affine,
                  const RunningStats<C>& running, const NoiseSource<C>& noise, SavedContext<C>& context) const {
    if (memory_format != MemoryFormat::contiguous)
      return Status::invalid_argument(std::string("normnorm: ") + config.name() +
                                      ": a column-major map takes memory_format contiguous (its own order is implied)");
    return call(mode, input.data(), shape_of(input), output.data(), shape_of(output), MemoryFormat::column_major, affine,
                running, noise, context);
  }

 private:
  Status call(Mode mode, const T* input, const Shape& input_dims, T* output, const Shape& output_dims,
              MemoryFormat format, const AffineMaps<C>& affine, const RunningStats<C>& running,
              const NoiseSource<C>& noise, SavedContext<C>& context) const {
    if (input_dims != output_dims)
      return Status::invalid_argument(std::string("normnorm: ") + config.name() + ": output shape " +
                                      output_dims.to_string() + " differs from input shape " + input_dims.to_string());
    ForwardArgs<T> args;
    args.input = input;
    args.shape = logical_shape(input_dims, format);
    args.memory_format = format;
    args.output = output;
    args.weight = affine.weight;
    args.bias = affine.bias;
    args.running = running;
    args.noise = noise;
    return try_forward(config, mode, args, context, execution);
  }
};

// Where backward writes the affine parameters' gradients (either may be null).
template <class T>
struct AffineGradMaps {
  T* grad_weight = nullptr;
  T* grad_bias = nullptr;
  index_t size = 0;
  index_t bias_size = 0;
  AffineGradMaps() = default;
  // Lengths are checked by the call (grad_weight and grad_bias must both hold num_affine() values).
  AffineGradMaps(VectorMap<T> gw, VectorMap<T> gb)
      : grad_weight(gw.data()), grad_bias(gb.data()), size(static_cast<index_t>(gw.size())),
        bias_size(static_cast<index_t>(gb.size())) {}
};

template <class T>
struct Backward {
  using C = compute_t<T>;
  LayerConfig config;
  Execution execution{};
  MemoryFormat memory_format = MemoryFormat::contiguous;

  template <int Rank>
  void operator()(ConstTensorMap<T, Rank> input, ConstTensorMap<T, Rank> grad_output, const AffineMaps<C>& affine,
                  TensorMap<T, Rank> grad_input, const AffineGradMaps<C>& grads, SavedContext<C>& context,
                  const C* external_noise = nullptr) const {
    detail::raise_if_error(try_call(input, grad_output, affine, grad_input, grads, context, external_noise));
  }
  template <int Rank>
  void operator()(ConstColMajorMap<T, Rank> input, ConstColMajorMap<T, Rank> grad_output, const AffineMaps<C>& affine,
                  ColMajorMap<T, Rank> grad_input, const AffineGradMaps<C>& grads, SavedContext<C>& context,
                  const C* external_noise = nullptr) const {
    detail::raise_if_error(try_call(input, grad_output, affine, grad_input, grads, context, external_noise));
  }

  template <int Rank>
  Status try_call(ConstTensorMap<T, Rank> input, ConstTensorMap<T, Rank> grad_output, const AffineMaps<C>& affine,
                  TensorMap<T, Rank> grad_input, const AffineGradMaps<C>& grads, SavedContext<C>& context,
                  const C* external_noise = nullptr) const {
    return call({input.data(), shape_of(input)}, {grad_output.data(), shape_of(grad_output)}, affine,
                {grad_input.data(), shape_of(grad_input)}, memory_format, grads, context, external_noise);
  }
  template <int Rank>
  Status try_call(ConstColMajorMap<T, Rank> input, ConstColMajorMap<T, Rank> grad_output, const AffineMaps<C>& affine,
                  ColMajorMap<T, Rank> grad_input, const AffineGradMaps<C>& grads, SavedContext<C>& context,
                  const C* external_noise = nullptr) const {
    if (memory_format != MemoryFormat::contiguous)
      return Status::invalid_argument(std::string("normnorm: ") + config.name() +
                                      ": a column-major map takes memory_format contiguous (its own order is implied)");
    return call({input.data(), shape_of(input)}, {grad_output.data(), shape_of(grad_output)}, affine,
                {grad_input.data(), shape_of(grad_input)}, MemoryFormat::column_major, grads, context, external_noise);
  }

 private:
  template <class P>
  struct Buffer {
    P data;
    Shape dims;
  };
  Status call(Buffer<const T*> input, Buffer<const T*> grad_output, const AffineMaps<C>& affine, Buffer<T*> grad_input,
              MemoryFormat format, const AffineGradMaps<C>& grads, SavedContext<C>& context,
              const C* external_noise) const {
    const std::string layer = std::string("normnorm: ") + config.name() + ": ";
    if (input.dims != grad_output.dims || input.dims != grad_input.dims)
      return Status::invalid_argument(layer + "input " + input.dims.to_string() + ", grad_output " +
                                      grad_output.dims.to_string() + " and grad_input " + grad_input.dims.to_string() +
                                      " must have the same shape");
    if (grads.grad_weight && grads.grad_bias && grads.size != grads.bias_size)
      return Status::invalid_argument(layer + "grad_weight (" + std::to_string(grads.size) + " values) and grad_bias (" +
                                      std::to_string(grads.bias_size) + " values) must have the same length");
    if (config.options.affine && grads.size != config.num_affine() && (grads.grad_weight || grads.grad_bias))
      return Status::invalid_argument(layer + "grad_weight must hold " + std::to_string(config.num_affine()) +
                                      " values, got " + std::to_string(grads.size));
    BackwardArgs<T> args;
    args.input = input.data;
    args.shape = logical_shape(input.dims, format);
    args.memory_format = format;
    args.grad_output = grad_output.data;
    args.weight = affine.weight;
    args.grad_input = grad_input.data;
    args.grad_weight = grads.grad_weight;
    args.grad_bias = grads.grad_bias;
    args.external_noise = external_noise;
    return try_backward(config, args, context, execution);
  }
};

}  // namespace normnorm::eigen
