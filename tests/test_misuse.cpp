// Misuse an embedder's own autograd or server code can make by accident (issue 13,
// docs/reliability.md items 17-23): each is refused with a clear error before
// anything is written, or made safe.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <normnorm/io/npy.hpp>
#include <normnorm/normnorm.hpp>

#include "harness.hpp"

namespace nn = normnorm;
using nn::test::Harness;

namespace {

// Calls f, which must throw std::invalid_argument with `needle` in its message.
template <class F>
void require_invalid(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const std::invalid_argument& error) {
    INFO(error.what());
    CHECK(std::string(error.what()).find(needle) != std::string::npos);
    return;
  }
  FAIL("expected std::invalid_argument containing \"" << needle << "\"");
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// A training forward with `forward_config`, then a backward with `backward_config`
// on the same input: the backward must be refused naming `field`, and leave the
// gradient buffers untouched.
void require_backward_refused(const nn::LayerConfig& forward_config, const nn::LayerConfig& backward_config,
                              const nn::Shape& shape, const std::string& field) {
  Harness<double> h(forward_config, shape);
  h.randomize(7);
  h.noise = nn::NoiseSource<double>::philox(3, 0);
  h.forward(nn::Mode::train);
  h.config = backward_config;
  h.weight.resize(static_cast<std::size_t>(backward_config.num_affine()), 1.0);
  h.grad_weight.assign(h.weight.size(), -7.0);
  h.grad_bias.assign(h.weight.size(), -7.0);
  h.grad_x.assign(h.grad_x.size(), -7.0);
  const auto grad_x = h.grad_x, grad_weight = h.grad_weight;
  require_invalid([&] { h.backward(); }, field);
  CHECK(same_bits(h.grad_x, grad_x));
  CHECK(same_bits(h.grad_weight, grad_weight));
}

}  // namespace

TEST_CASE("backward refuses a config other than the forward's, naming the difference", "[misuse]") {
  const nn::Shape image{2, 4, 3, 3};
  SECTION("another form on the same shape") {
    require_backward_refused(nn::LayerConfig::batch_normal_norm_2d(4), nn::LayerConfig::instance_normal_norm_2d(4),
                             image, "form");
  }
  SECTION("another number of groups") {
    require_backward_refused(nn::LayerConfig::group_normal_norm(1, 4), nn::LayerConfig::group_normal_norm(4, 4), image,
                             "num_groups");
  }
  SECTION("another estimator (newton_step then exact once dereferenced null)") {
    nn::Options exact = nn::default_options(nn::Form::batch_2d);
    exact.estimator = nn::LambdaEstimator::exact;
    require_backward_refused(nn::LayerConfig::batch_normal_norm_2d(4), nn::LayerConfig::batch_normal_norm_2d(4, exact),
                             image, "estimator");
  }
  SECTION("each option that shapes the backward") {
    struct Change {
      const char* field;
      void (*apply)(nn::Options&);
    };
    const Change changes[] = {
        {"affine", [](nn::Options& o) { o.affine = false; }},
        {"standardize", [](nn::Options& o) { o.standardize = false; }},
        {"power_transform", [](nn::Options& o) { o.power_transform = false; }},
        {"eps", [](nn::Options& o) { o.eps = 1e-3; }},
        {"alpha", [](nn::Options& o) { o.alpha = 0.5; }},
        {"order", [](nn::Options& o) { o.order = 1; }},
        {"noise_train", [](nn::Options& o) { o.noise_train = 0.0; }},
        {"newton_iterations", [](nn::Options& o) { o.newton_iterations = 3; }},
    };
    for (const Change& change : changes) {
      INFO(change.field);
      nn::Options other = nn::default_options(nn::Form::layer);
      change.apply(other);
      require_backward_refused(nn::LayerConfig::layer_normal_norm(nn::Shape{4, 3, 3}),
                               nn::LayerConfig::layer_normal_norm(nn::Shape{4, 3, 3}, other), image, change.field);
    }
  }
  SECTION("the same config is accepted") {
    Harness<double> h(nn::LayerConfig::group_normal_norm(2, 4), image);
    h.randomize(1);
    h.noise = nn::NoiseSource<double>::philox(3, 0);
    h.forward(nn::Mode::train);
    REQUIRE_NOTHROW(h.backward());
  }
}

TEST_CASE("running statistics may not alias each other, the input or the parameters", "[misuse]") {
  Harness<float> h(nn::LayerConfig::batch_normal_norm_2d(3), nn::Shape{2, 3, 2, 2});
  h.randomize(2);
  h.noise = nn::NoiseSource<float>::philox(1, 0);
  const auto before = h.out;
  nn::ForwardArgs<float> args;
  args.input = h.x.data();
  args.shape = h.shape;
  args.output = h.out.data();
  args.weight = {h.weight.data(), 3};
  args.bias = {h.bias.data(), 3};
  args.noise = h.noise;
  auto refused = [&](nn::RunningStats<float> running, const std::string& needle) {
    nn::ForwardArgs<float> a = args;
    a.running = running;
    const nn::Status status = nn::try_forward(h.config, nn::Mode::train, a, h.context);
    INFO(status.message());
    CHECK(status.kind() == nn::ErrorKind::invalid_argument);
    CHECK(status.message().find(needle) != std::string::npos);
    CHECK(same_bits(h.out, before));
  };
  nn::RunningStats<float> running = h.running();
  SECTION("var is mean") {
    running.var = running.mean;
    refused(running, "running_var overlaps running_mean");
  }
  SECTION("lambda overlaps norm by one value") {
    std::vector<float> shared(5, 1.0f);
    running.lambda = shared.data();
    running.norm = shared.data() + 2;
    refused(running, "running_norm overlaps running_lambda");
  }
  SECTION("mean inside the input") {
    running.mean = h.x.data() + 4;
    refused(running, "running_mean overlaps input");
  }
  SECTION("var is the weight") {
    running.var = h.weight.data();
    refused(running, "running_var overlaps weight or bias");
  }
  SECTION("num_batches_tracked inside running_norm") {
    std::vector<float> wide(8, 0.5f);
    running.norm = wide.data();
    running.num_batches_tracked = reinterpret_cast<std::int64_t*>(wide.data() + 2);
    refused(running, "num_batches_tracked overlaps running_norm");
  }
}

TEST_CASE("num_batches_tracked: a negative count is refused, the top of the range saturates", "[misuse]") {
  nn::Options cumulative = nn::default_options(nn::Form::batch_1d);
  cumulative.momentum = std::nullopt;
  Harness<double> h(nn::LayerConfig::batch_normal_norm_1d(3, cumulative), nn::Shape{6, 3});
  h.randomize(4);
  h.noise = nn::NoiseSource<double>::philox(5, 0);
  SECTION("negative") {
    h.batches = -2;
    const auto mean = h.running_mean, out = h.out;
    require_invalid([&] { h.forward(nn::Mode::train); }, "num_batches_tracked must be >= 0, got -2");
    CHECK(h.batches == -2);
    CHECK(same_bits(h.running_mean, mean));
    CHECK(same_bits(h.out, out));
  }
  SECTION("the largest count") {
    h.batches = std::numeric_limits<std::int64_t>::max();
    h.forward(nn::Mode::train);
    CHECK(h.batches == std::numeric_limits<std::int64_t>::max());
    for (std::size_t c = 0; c < 3; ++c) {
      CHECK(std::isfinite(h.running_mean[c]));
      CHECK(std::isfinite(h.running_var[c]));
      CHECK(std::isfinite(h.running_lambda[c]));
    }
  }
  SECTION("through a module") {
    nn::BatchNormalNorm1d<float> module(3);
    require_invalid([&] { module.set_num_batches_tracked(-1); }, "num_batches_tracked must be >= 0");
    CHECK(module.num_batches_tracked() == 0);
    module.set_num_batches_tracked(41);
    CHECK(module.num_batches_tracked() == 41);
  }
}

TEST_CASE("module running statistics are fixed-size views", "[misuse]") {
  nn::BatchNormalNorm2d<float> module(4);
  static_assert(std::is_same_v<decltype(module.running_var()), nn::Span<float>>,
                "a module hands out spans: its running statistics cannot be resized");
  for (nn::Span<float> s : {module.running_mean(), module.running_var(), module.running_lambda(), module.running_norm()})
    CHECK(s.size == 4);
  // Writing through a span is what loading a checkpoint does: the next forward uses it.
  module.running_lambda()[2] = 0.5f;
  module.eval();
  std::vector<float> x(2 * 4 * 3, 1.5f), y(x.size());
  module.forward(x.data(), nn::Shape{2, 4, 3, 1}, y.data());
  CHECK(y[0] != y[2 * 3]);  // channel 0 (lambda 1) and channel 2 (lambda 0.5) map 1.5 differently
}

TEST_CASE("a module shared by threads gives each caller the serial result", "[misuse][threads]") {
  // Before, evaluation wrote the module's one context unguarded: wrong outputs and
  // out-of-bounds writes with different batch sizes. Calls now take turns.
  constexpr int threads = 4, calls = 20;
  auto run = [&](auto& module, const std::vector<nn::Shape>& shapes) {
    std::vector<std::vector<float>> inputs, expected;
    for (std::size_t k = 0; k < shapes.size(); ++k) {
      Harness<float> data(module.config(), shapes[k]);
      data.randomize(static_cast<unsigned>(11 + k));
      inputs.push_back(data.x);
      expected.emplace_back(data.x.size());
      module.forward(inputs[k].data(), shapes[k], expected[k].data());
    }
    std::vector<int> mismatches(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const std::size_t k = static_cast<std::size_t>(t) % shapes.size();
        std::vector<float> out(inputs[k].size());
        for (int call = 0; call < calls; ++call) {
          module.forward(inputs[k].data(), shapes[k], out.data());
          if (!same_bits(out, expected[k])) ++mismatches[static_cast<std::size_t>(t)];
        }
      });
    for (auto& thread : pool) thread.join();
    for (int t = 0; t < threads; ++t) CHECK(mismatches[static_cast<std::size_t>(t)] == 0);
  };
  SECTION("layer form, evaluation") {
    nn::LayerNormalNorm<float> module(nn::Shape{6, 5});
    module.eval();
    run(module, {nn::Shape{3, 6, 5}, nn::Shape{5, 6, 5}});
  }
  SECTION("group form with the exact estimator, evaluation") {
    nn::Options exact = nn::default_options(nn::Form::group);
    exact.estimator = nn::LambdaEstimator::exact;
    nn::GroupNormalNorm<float> module(2, 4, exact);
    module.eval();
    run(module, {nn::Shape{2, 4, 3, 3}, nn::Shape{3, 4, 3, 3}});
  }
  SECTION("batch form, fresh module, different batch sizes") {
    nn::BatchNormalNorm2d<float> module(3);
    module.eval();
    run(module, {nn::Shape{1, 3, 4, 4}, nn::Shape{6, 3, 4, 4}});
  }
}

TEST_CASE("a layer config that overflows its affine size is refused, not wrapped", "[misuse]") {
  const nn::index_t big = nn::index_t(1) << 40;
  const auto config = nn::LayerConfig::layer_normal_norm(nn::Shape{big, big});
  CHECK(config.num_affine() == std::numeric_limits<nn::index_t>::max());
  require_invalid([&] { nn::LayerNormalNorm<float> module(nn::Shape{big, big}); }, "too many elements");
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NORMNORM_TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NORMNORM_TEST_UNDER_SANITIZER 1
#endif
#endif

#ifndef NORMNORM_TEST_UNDER_SANITIZER
// (The sanitizers' allocators abort on such a request instead of throwing.)
TEST_CASE("try_forward reports memory it cannot allocate as a Status, writing nothing", "[misuse]") {
  // (2^40, 2) float validates; its transposed working copy (8 TiB) cannot be allocated.
  // The data is never read: allocation comes first. It is computed in place on a
  // stack buffer, so the 8 TiB it claims lie above every heap buffer below (no overlap).
  nn::Options quiet = nn::default_options(nn::Form::batch_1d);
  quiet.noise_train = 0;
  const auto config = nn::LayerConfig::batch_normal_norm_1d(2, quiet);
  float data[4] = {-3.0f, -3.0f, -3.0f, -3.0f};
  std::vector<float> mean(2, 0.f), var(2, 1.f), lambda(2, 1.f), norm(2, 0.8f);
  std::int64_t batches = 0;
  nn::ForwardArgs<float> args;
  args.input = data;
  args.shape = nn::Shape{nn::index_t(1) << 40, 2};
  args.output = data;
  std::vector<float> weight(2, 1.f), bias(2, 0.f);
  args.weight = {weight.data(), 2};
  args.bias = {bias.data(), 2};
  args.running = {mean.data(), var.data(), lambda.data(), norm.data(), &batches, 2};
  nn::SavedContext<float> context;
  const nn::Status status = nn::try_forward(config, nn::Mode::train, args, context);
  INFO(status.message());
  CHECK(status.kind() == nn::ErrorKind::out_of_memory);
  CHECK(status.message().find("cannot allocate") != std::string::npos);
  CHECK_FALSE(context.valid);
  CHECK(std::vector<float>(data, data + 4) == std::vector<float>(4, -3.0f));
  CHECK(batches == 0);
  CHECK_THROWS_AS(nn::forward(config, nn::Mode::train, args, context), std::bad_alloc);
}
#endif

TEST_CASE("npy: sizes never overflow, and a stream that is not .npy fails at its first bytes", "[misuse][npy]") {
  nn::io::NpyArray array;
  const std::int64_t huge = std::int64_t(1) << 62;
  array.shape = {huge, huge, 0};
  CHECK(array.size() == 0);
  array.shape = {huge, 4};
  CHECK(array.size() == -1);
  array.shape = {3, -1};
  CHECK(array.size() == -1);
  array.shape = {};
  CHECK(array.size() == 1);

  std::ifstream zero("/dev/zero");
  if (zero) {  // the whole endless stream was read before, then bad_alloc
    CHECK_THROWS_WITH(nn::io::read_npy("/dev/zero"), Catch::Contains("bad magic"));
  }
  // A header length far beyond any real header is refused before it is read.
  const std::string path = "misuse_huge_header.npy";
  {
    std::ofstream file(path, std::ios::binary);
    const unsigned char prefix[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0x7f};
    file.write(reinterpret_cast<const char*>(prefix), sizeof prefix);
  }
  CHECK_THROWS_WITH(nn::io::read_npy(path), Catch::Contains("exceeds"));
  std::remove(path.c_str());
}
