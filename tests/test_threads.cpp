// Threads: every form, mode and dtype gives bit-identical outputs, gradients and
// running statistics on 1, 2 and 3 threads (work is split by group; sums are
// reduced in fixed blocks).

#include <normnorm/normnorm.hpp>

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

TEMPLATE_TEST_CASE("results are bit-identical for any thread count", "[threads]", float, double) {
  std::vector<FormCase> cases = form_cases(Options{}, false);
  // Larger shapes too, so that groups really spread over the threads.
  cases.push_back({LayerConfig::batch_normal_norm_2d(16, default_options(Form::batch_2d)), Shape{4, 16, 9, 7}});
  cases.push_back({LayerConfig::layer_normal_norm(Shape{37}, default_options(Form::layer)), Shape{130, 37}});
  cases.push_back({LayerConfig::group_normal_norm(4, 8, default_options(Form::group)), Shape{9, 8, 5, 5}});
  cases.push_back({LayerConfig::instance_normal_norm_2d(5, default_options(Form::instance_2d)), Shape{11, 5, 4, 6}});
  for (const FormCase& fc : cases) {
    INFO(fc.config.name() << " " << fc.shape.to_string());
    Harness<TestType> serial(fc.config, fc.shape);
    serial.randomize(31);
    serial.noise = NoiseSource<TestType>::philox(8, 2);
    for (Mode mode : {Mode::train, Mode::eval, Mode::train}) {
      serial.forward(mode);
      serial.backward();
    }
    for (int threads : {1, 2, 3}) {
      Eigen::ThreadPool pool(threads);
      Eigen::ThreadPoolDevice device(&pool, threads);
      Harness<TestType> threaded(fc.config, fc.shape);
      threaded.randomize(31);
      threaded.noise = serial.noise;
      threaded.execution.device = &device;
      for (Mode mode : {Mode::train, Mode::eval, Mode::train}) {
        threaded.forward(mode);
        threaded.backward();
      }
      INFO(threads << " threads");
      CHECK(threaded.out == serial.out);
      CHECK(threaded.grad_x == serial.grad_x);
      CHECK(threaded.grad_weight == serial.grad_weight);
      CHECK(threaded.grad_bias == serial.grad_bias);
      CHECK(threaded.running_mean == serial.running_mean);
      CHECK(threaded.running_var == serial.running_var);
      CHECK(threaded.running_lambda == serial.running_lambda);
      CHECK(threaded.running_norm == serial.running_norm);
    }
  }
}

TEST_CASE("a bad training group is reported the same way on threads", "[threads]") {
  Eigen::ThreadPool pool(2);
  Eigen::ThreadPoolDevice device(&pool, 2);
  Options o = default_options(Form::layer);
  o.noise_train = 0;
  Harness<float> layer(LayerConfig::layer_normal_norm(Shape{8}, o), Shape{50, 8});
  layer.randomize(3);
  layer.execution.device = &device;
  layer.x[8 * 17 + 3] = std::numeric_limits<float>::quiet_NaN();
  layer.x[8 * 40 + 1] = std::numeric_limits<float>::infinity();
  std::fill(layer.out.begin(), layer.out.end(), 7.0f);
  CHECK_THROWS_WITH(layer.forward(Mode::train), Catch::Contains("group 17"));
  for (float v : layer.out) REQUIRE(v == 7.0f);
}
