// A small CNN in libtorch C++ with normnorm's BatchNormalNorm2d after each convolution,
// trained for a few SGD steps on Fashion-MNIST, then evaluated on part of the test set.
//
//   normnorm_torch_example [--steps 40] [--batch 64] [--test-limit 2000] [--threads 1] [--seed 1]
//                          [--data /usr/share/datasets/fashion-mnist]
//
// Exits 0 when the training loss went down (last 10 steps' mean below the first 10's),
// 77 when the data is not installed (Debian: dataset-fashion-mnist), 1 otherwise.

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

#include <normnorm/torch/modules.hpp>

#include "../fashion_mnist/data.hpp"

namespace {

struct Args {
  int steps = 40, batch = 64, test_limit = 2000, threads = 1;
  std::uint64_t seed = 1;
  std::string data = fashion_mnist::default_data_dir;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--steps") a.steps = std::atoi(value);
    else if (key == "--batch") a.batch = std::atoi(value);
    else if (key == "--test-limit") a.test_limit = std::atoi(value);
    else if (key == "--threads") a.threads = std::atoi(value);
    else if (key == "--seed") a.seed = std::strtoull(value, nullptr, 10);
    else if (key == "--data") a.data = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return a;
}

// conv 3x3 -> BatchNormalNorm2d -> ReLU -> 2x2 max pool, twice, then a linear classifier.
struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)))),
        norm1(register_module("norm1", normnorm::torch::BatchNormalNorm2d(16))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1).bias(false)))),
        norm2(register_module("norm2", normnorm::torch::BatchNormalNorm2d(32))),
        fc(register_module("fc", torch::nn::Linear(32 * 7 * 7, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(norm1(conv1(x))), 2);
    x = torch::max_pool2d(torch::relu(norm2(conv2(x))), 2);
    return fc(x.flatten(1));
  }

  torch::nn::Conv2d conv1;
  normnorm::torch::BatchNormalNorm2d norm1;
  torch::nn::Conv2d conv2;
  normnorm::torch::BatchNormalNorm2d norm2;
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

torch::Tensor images_of(const fashion_mnist::Split& split) {
  return torch::from_blob(const_cast<float*>(split.images.data()), {split.count(), 1, 28, 28}).clone();
}
torch::Tensor labels_of(const fashion_mnist::Split& split) {
  return torch::tensor(std::vector<std::int64_t>(split.labels.begin(), split.labels.end()));
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  torch::set_num_threads(args.threads);
  torch::manual_seed(args.seed);  // initial weights, batch order and normnorm's noise keys

  fashion_mnist::Dataset data;
  try {
    data = fashion_mnist::load(args.data, args.steps * args.batch, args.test_limit);
  } catch (const fashion_mnist::DataMissing& e) {
    std::fprintf(stderr, "%s\ninstall it with: apt-get install dataset-fashion-mnist (or pass --data DIR)\n", e.what());
    return 77;
  }
  const torch::Tensor train_x = images_of(data.train), train_y = labels_of(data.train);
  const torch::Tensor test_x = images_of(data.test), test_y = labels_of(data.test);

  Net net;
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.02).momentum(0.9));
  const torch::Tensor order = torch::randperm(train_x.size(0));
  std::vector<double> losses;
  const auto start = std::chrono::steady_clock::now();
  net->train();
  for (int step = 0; step < args.steps; ++step) {
    const torch::Tensor index = order.slice(0, step * args.batch, (step + 1) * args.batch);
    sgd.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(train_x.index_select(0, index)),
                                                                    train_y.index_select(0, index));
    loss.backward();
    sgd.step();
    losses.push_back(loss.item<double>());
    if (step % 10 == 0 || step + 1 == args.steps) std::printf("step %3d  loss %.4f\n", step, losses.back());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  net->eval();
  torch::NoGradGuard no_grad;
  const double accuracy = net->forward(test_x).argmax(1).eq(test_y).to(torch::kDouble).mean().item<double>();
  const int window = std::min<int>(10, static_cast<int>(losses.size()));
  const double first = std::accumulate(losses.begin(), losses.begin() + window, 0.0) / window;
  const double last = std::accumulate(losses.end() - window, losses.end(), 0.0) / window;
  std::printf("%d steps of batch %d in %.2f s (%d thread%s); mean loss of the first %d steps %.4f, last %d %.4f\n",
              args.steps, args.batch, seconds, args.threads, args.threads == 1 ? "" : "s", window, first, window, last);
  std::printf("test accuracy (eval mode, running statistics, %d images): %.2f%%\n", data.test.count(),
              100.0 * accuracy);
  std::printf("norm1 running_lmbda[0..3] = %.4f %.4f %.4f %.4f, num_batches_tracked = %lld\n",
              net->norm1->running_lmbda[0].item<double>(), net->norm1->running_lmbda[1].item<double>(),
              net->norm1->running_lmbda[2].item<double>(), net->norm1->running_lmbda[3].item<double>(),
              static_cast<long long>(net->norm1->num_batches_tracked.item<std::int64_t>()));
  if (!(last < first)) {
    std::fprintf(stderr, "the training loss did not go down\n");
    return 1;
  }
  return 0;
}
