// The backward's two ways of getting each element's u psi_h and d lambda to its
// writing pass (engine/backward.hpp): kept per thread when the group fits in
// engine::max_partial_group values, recomputed beyond; and Execution::keep_noise,
// which hands the forward's draws to the backward instead of drawing them again.

#include <normnorm/normnorm.hpp>  // first: defines EIGEN_USE_THREADS before Eigen's Tensor

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

// Largest |a - b| / (1 + |b|) over two gradients.
template <class A, class B>
double worst(const std::vector<A>& a, const std::vector<B>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(b[i]))));
  return w;
}

}  // namespace

TEST_CASE("Backward: groups on either side of the partials' limit match float64", "[backward]") {
  // (2, 1, 128, 128): one group of 32768 values, the limit, keeps its partials;
  // (2, 1, 128, 129): 33024 values, recomputed in the writing pass.
  for (index_t width : {index_t(128), index_t(129)}) {
    INFO("width " << width);
    const auto config = LayerConfig::batch_normal_norm_2d(1, Options{});
    const Shape shape{2, 1, 128, width};
    REQUIRE((2 * 128 * width <= engine::max_partial_group) == (width == 128));
    Harness<float> single(config, shape);
    Harness<double> reference(config, shape);
    single.randomize(21);
    reference.randomize(21);
    for (std::size_t i = 0; i < single.x.size(); ++i) reference.x[i] = double(single.x[i]);
    for (std::size_t i = 0; i < single.grad_out.size(); ++i) reference.grad_out[i] = double(single.grad_out[i]);
    single.noise = NoiseSource<float>::philox(3, 1);
    reference.noise = NoiseSource<double>::philox(3, 1);
    single.forward(Mode::train);
    reference.forward(Mode::train);
    single.backward();
    reference.backward();
    CHECK(worst(single.grad_x, reference.grad_x) < 2e-4);
    CHECK(worst(single.grad_weight, reference.grad_weight) < 2e-4);
  }
}

TEMPLATE_TEST_CASE("keep_noise: the backward reads the forward's draws, with the same results bit for bit", "[backward][noise]",
                   float, double) {
  using T = TestType;
  Options options;
  options.noise_train = 0.4;
  for (const FormCase& fc : form_cases(options, true))
    for (MemoryFormat format : {MemoryFormat::contiguous, MemoryFormat::channels_last})
      for (bool external : {false, true}) {
        if (format == MemoryFormat::channels_last && (fc.shape.rank() != 4 || fc.config.form == Form::layer)) continue;
        INFO(fc.config.name() << (format == MemoryFormat::channels_last ? " NHWC" : "") << (external ? " external" : " philox"));
        Harness<T> replayed(fc.config, fc.shape), kept(fc.config, fc.shape);
        replayed.memory_format = kept.memory_format = format;
        replayed.randomize(4);
        kept.randomize(4);
        std::vector<T> draws(replayed.x.size());
        noise::fill_standard_normals<T>(8, 2, 0, draws.size(), draws.data());
        replayed.noise = kept.noise = external ? NoiseSource<T>::external(draws.data()) : NoiseSource<T>::philox(8, 2);
        kept.execution.keep_noise = true;
        replayed.forward(Mode::train);
        kept.forward(Mode::train);
        CHECK(kept.context.noise_kept);
        CHECK_FALSE(replayed.context.noise_kept);
        CHECK(kept.out == replayed.out);
        // Kept draws need no external_noise in the backward.
        if (external) kept.external_noise_in_backward = false;
        replayed.backward();
        kept.backward();
        CHECK(kept.grad_x == replayed.grad_x);
        CHECK(kept.grad_weight == replayed.grad_weight);
        CHECK(kept.grad_bias == replayed.grad_bias);
        // A forward without keep_noise forgets the kept draws: the backward replays again.
        kept.execution.keep_noise = false;
        kept.external_noise_in_backward = true;
        kept.forward(Mode::train);
        CHECK_FALSE(kept.context.noise_kept);
        kept.backward();
        CHECK(kept.grad_weight == replayed.grad_weight);
      }
}

TEST_CASE("Partials with a thread pool: the same bits as on one thread", "[backward][threads]") {
  // A device told of fewer threads than its pool has: every pool thread may still run work,
  // so the per-thread buffers are counted by the pool.
  Eigen::ThreadPool pool(4);
  Eigen::ThreadPoolDevice device(&pool, 2);
  Options options;
  options.noise_train = 0.4;
  for (const FormCase& fc : form_cases(options, true)) {
    INFO(fc.config.name());
    // Larger batches so the work is spread over the pool (engine::serial_cycles).
    Shape shape = fc.shape;
    shape[0] *= 64;
    Harness<float> serial(fc.config, shape), pooled(fc.config, shape);
    serial.randomize(6);
    pooled.randomize(6);
    serial.noise = pooled.noise = NoiseSource<float>::philox(1, 1);
    pooled.execution.device = &device;
    for (int round = 0; round < 3; ++round) {
      serial.forward(Mode::train);
      pooled.forward(Mode::train);
      serial.backward();
      pooled.backward();
      CHECK(pooled.grad_x == serial.grad_x);
      CHECK(pooled.grad_weight == serial.grad_weight);
    }
  }
}
