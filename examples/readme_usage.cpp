#include <normnorm/normnorm.hpp>
#include <cstdio>

int main() {
  // A module owns weight, bias, running statistics and noise state, like torch.nn.
  normnorm::BatchNormalNorm2d<float> norm(/*num_features=*/3);
  Eigen::Tensor<float, 4, Eigen::RowMajor> x(8, 3, 4, 4);     // (N, C, H, W)
  x.setRandom();
  x = x.exp();                                                // skewed input
  auto y = norm.forward(x);                                   // training: statistics, lambda, noise
  Eigen::Tensor<float, 4, Eigen::RowMajor> grad_y(x.dimensions());
  grad_y.setConstant(1.0f);
  auto grad_x = norm.backward(x, grad_y);                     // also fills norm.grad_weight()/grad_bias()
  norm.eval();                                                // running statistics, no noise
  auto y_eval = norm.forward(x);
  std::printf("lambda[0] = %.3f, y_eval[0] = %.3f, grad_x[0] = %.3g\n",
              norm.running_lambda()[0], y_eval(0, 0, 0, 0), grad_x(0, 0, 0, 0));
  return y.size() == x.size() ? 0 : 1;
}
