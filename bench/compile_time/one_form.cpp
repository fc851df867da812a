// Compile-time probe (docs/integration.md): one form, one type, forward + backward.
#include <normnorm/normnorm.hpp>

#include <vector>

int main() {
  normnorm::BatchNormalNorm2d<float> layer(3);
  const normnorm::Shape shape{2, 3, 4, 4};
  std::vector<float> x(96), y(96), grad_y(96, 1.0f), grad_x(96);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  layer.forward(x.data(), shape, y.data());
  layer.backward(x.data(), shape, grad_y.data(), grad_x.data());
  return y[0] == y[0] ? 0 : 1;
}
