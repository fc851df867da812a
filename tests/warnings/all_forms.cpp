// Compiled by the warnings.* tests with -Wall -Wextra -Wpedantic -Wshadow -Wconversion
// -Werror, as a consumer would, and run (linked with normnorm::compiled) by
// compiled_kernels: every form, both types, forward and backward through the module
// classes, the raw API and the Eigen functors.
#include <normnorm/normnorm.hpp>

#include <vector>

namespace {

template <class T, class Module>
T run(Module& module, const normnorm::Shape& shape) {
  std::size_t n = 1;
  for (normnorm::index_t d : shape) n *= static_cast<std::size_t>(d);
  std::vector<T> x(n), y(n), grad_y(n, T(1)), grad_x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<T>(i % 7) - T(3);
  module.forward(x.data(), shape, y.data());
  module.backward(x.data(), shape, grad_y.data(), grad_x.data());
  if (shape.rank() == 4) {  // the NHWC path too
    module.forward(x.data(), shape, y.data(), normnorm::MemoryFormat::channels_last);
    module.backward(x.data(), shape, grad_y.data(), grad_x.data(), normnorm::MemoryFormat::channels_last);
  }
  module.eval();
  module.forward(x.data(), shape, y.data());
  return y[0] + grad_x[0];
}

template <class T>
T run_all_forms() {
  normnorm::BatchNormalNorm1d<T> bn1(3);
  normnorm::BatchNormalNorm2d<T> bn2(3);
  normnorm::LayerNormalNorm<T> ln(normnorm::Shape{4});
  normnorm::GroupNormalNorm<T> gn(2, 4);
  normnorm::InstanceNormalNorm2d<T> in(3);
  return run<T>(bn1, normnorm::Shape{4, 3}) + run<T>(bn2, normnorm::Shape{2, 3, 2, 2}) +
         run<T>(ln, normnorm::Shape{3, 4}) + run<T>(gn, normnorm::Shape{2, 4, 3}) +
         run<T>(in, normnorm::Shape{2, 3, 2, 2});
}

// The Eigen entry point (a rank-2 TensorMap).
template <class T>
T run_eigen() {
  std::vector<T> x(12, T(1)), y(12);
  x[3] = T(2);
  x[7] = T(-1);
  normnorm::Options options = normnorm::default_options(normnorm::Form::batch_1d);
  options.affine = false;
  options.track_running_stats = false;
  options.noise_train = 0;
  normnorm::eigen::Forward<T> forward{normnorm::LayerConfig::batch_normal_norm_1d(3, options)};
  normnorm::SavedContext<T> context;
  forward(normnorm::Mode::train, normnorm::eigen::ConstTensorMap<T, 2>(x.data(), 4, 3),
          normnorm::eigen::TensorMap<T, 2>(y.data(), 4, 3), {}, {}, {}, context);
  return y[0];
}

}  // namespace

int main() {
  const double total = static_cast<double>(run_all_forms<float>() + run_eigen<float>()) + run_all_forms<double>() +
                       run_eigen<double>();
  return total == total ? 0 : 1;
}
