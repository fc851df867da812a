// The memory plan (memory_plan.hpp): the size queries of a saved context's parts
// are exact (what a fresh context holds after the calls), and a workspace the caller
// provides is used as is, or refused before anything is written when too small.

#include <normnorm/normnorm.hpp>  // first: defines EIGEN_USE_THREADS before Eigen's Tensor

#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

struct PlanCase {
  LayerConfig config;
  Shape shape;
  MemoryFormat format;
};

// Every form and layout the engine treats differently: transposed (N, C),
// channels-last and column-major copies, column-major batch input and columns in place,
// in-place fixed maps, groups sharing channels, the searches.
std::vector<PlanCase> plan_cases(const Options& options) {
  auto with = [&](Form form) {
    Options o = default_options(form);
    o.noise_train = options.noise_train;
    o.estimator = options.estimator;
    o.evaluation_map = options.evaluation_map;
    o.affine = options.affine;
    return o;
  };
  return {
      {LayerConfig::batch_normal_norm_1d(5, with(Form::batch_1d)), Shape{12, 5}, MemoryFormat::contiguous},
      // Channels walked in place as columns (engine/placement.hpp: 8 float channels per row).
      {LayerConfig::batch_normal_norm_1d(8, with(Form::batch_1d)), Shape{12, 8}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_2d(8, with(Form::batch_2d)), Shape{2, 8, 3, 4}, MemoryFormat::channels_last},
      {LayerConfig::batch_normal_norm_1d(4, with(Form::batch_1d)), Shape{6, 4, 7}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_2d(3, with(Form::batch_2d)), Shape{3, 3, 4, 5}, MemoryFormat::contiguous},
      {LayerConfig::batch_normal_norm_2d(3, with(Form::batch_2d)), Shape{3, 3, 4, 5}, MemoryFormat::channels_last},
      {LayerConfig::layer_normal_norm(Shape{3, 7}, with(Form::layer)), Shape{2, 3, 3, 7}, MemoryFormat::contiguous},
      {LayerConfig::group_normal_norm(2, 4, with(Form::group)), Shape{3, 4, 3, 5}, MemoryFormat::contiguous},
      {LayerConfig::group_normal_norm(2, 4, with(Form::group)), Shape{3, 4, 3, 5}, MemoryFormat::channels_last},
      {LayerConfig::instance_normal_norm_2d(3, with(Form::instance_2d)), Shape{2, 3, 5, 5}, MemoryFormat::contiguous},
      // Each sample's columns in place (instance forms, and groups of one channel); in the second, several
      // groups of a channel to an accumulator block.
      {LayerConfig::instance_normal_norm_2d(8, with(Form::instance_2d)), Shape{2, 8, 3, 4}, MemoryFormat::channels_last},
      {LayerConfig::group_normal_norm(8, 8, with(Form::group)), Shape{70, 8, 2, 3}, MemoryFormat::channels_last},
      // Column-major: batch forms in place, the others through a copy (engine/placement.hpp).
      {LayerConfig::batch_normal_norm_2d(3, with(Form::batch_2d)), Shape{3, 3, 4, 5}, MemoryFormat::column_major},
      {LayerConfig::batch_normal_norm_1d(5, with(Form::batch_1d)), Shape{12, 5}, MemoryFormat::column_major},
      {LayerConfig::instance_normal_norm_2d(3, with(Form::instance_2d)), Shape{2, 3, 5, 5}, MemoryFormat::column_major},
      {LayerConfig::layer_normal_norm(Shape{3, 7}, with(Form::layer)), Shape{2, 3, 3, 7}, MemoryFormat::column_major},
  };
}

template <class T>
Harness<T> layer_for(const PlanCase& c) {
  Harness<T> layer(c.config, c.shape);
  layer.memory_format = c.format;
  layer.randomize(7);
  layer.noise = NoiseSource<T>::philox(11, 3);
  return layer;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

TEMPLATE_TEST_CASE("memory_plan predicts exactly what a fresh context holds after forward and backward", "[memory_plan]",
                   float, double) {
  using T = TestType;
  int checked = 0;
  for (LambdaEstimator estimator : {LambdaEstimator::newton_step, LambdaEstimator::exact})
    for (double noise : {0.0, 0.4})
      for (bool affine : {true, false})
        for (EvaluationMap map : {EvaluationMap::exact, EvaluationMap::polynomial}) {
          Options options;
          options.estimator = estimator;
          options.noise_train = noise;
          options.affine = affine;
          options.evaluation_map = map;
          for (const PlanCase& c : plan_cases(options))
            for (Mode mode : {Mode::train, Mode::eval}) {
              INFO(c.config.name() << " " << c.shape.to_string() << (c.format == MemoryFormat::channels_last ? " NHWC"
                                                                   : c.format == MemoryFormat::column_major ? " column-major" : "")
                                   << (mode == Mode::train ? " train" : " eval") << " estimator "
                                   << estimator_name(estimator) << " noise " << noise << " affine " << affine);
              const MemoryPlan plan = memory_plan<T>(c.config, c.shape, mode, c.format);
              Harness<T> layer = layer_for<T>(c);
              layer.forward(mode);
              CHECK(layer.context.state_bytes() == plan.state);
              CHECK(layer.context.workspace.capacity() == plan.forward_workspace);
              CHECK(layer.context.evaluation.bytes() == plan.evaluation_cache);
              layer.backward();
              CHECK(layer.context.workspace.capacity() == plan.workspace());
              CHECK(layer.context.state_bytes() == plan.state);
              ++checked;
            }
        }
  CHECK(checked == 2 * 2 * 2 * 2 * static_cast<int>(plan_cases(Options{}).size()) * 2);
}

TEST_CASE("memory_plan: the parts it names, for a shape whose sizes are easy to check by hand", "[memory_plan]") {
  // BatchNormalNorm1d (N, C) = (100, 8) in float, training with noise: the engine walks the
  // channels in place (engine/placement.hpp), drawing the noise in memory order (800 floats),
  // with one verdict per channel; the backward replays the noise (800 floats), keeps 2 sums
  // per channel and, for the one thread, the partials of one block of channels (2 x 100
  // values x 16 lanes: the widest batch, 64 bytes). State: 9 doubles per channel.
  const auto config = LayerConfig::batch_normal_norm_1d(8, Options{});
  const MemoryPlan plan = memory_plan<float>(config, Shape{100, 8}, Mode::train);
  CHECK(plan.state == 8 * 9 * sizeof(double));
  CHECK(plan.forward_workspace == 800 * sizeof(float) + 64);  // + the verdicts' aligned block
  CHECK(plan.backward_workspace == 800 * sizeof(float) + 2 * 64 + 2 * 100 * 16 * sizeof(float));
  // On the transposed copy instead (Execution::columns_in_place = false): the input, its
  // draws and a buffer to draw them in (3 x 800 floats); the backward copies input and
  // grad_output and replays the noise (4 x 800 floats), and keeps one group's partials
  // (2 x 100 floats, 832 bytes aligned).
  Execution on_copy;
  on_copy.columns_in_place = false;
  const MemoryPlan copied = memory_plan<float>(config, Shape{100, 8}, Mode::train, MemoryFormat::contiguous, on_copy);
  CHECK(copied.forward_workspace == 3 * 800 * sizeof(float) + 64);
  CHECK(copied.backward_workspace == 4 * 800 * sizeof(float) + 2 * 64 + 832);
  CHECK(plan.evaluation_cache == 0);
  const MemoryPlan eval = memory_plan<float>(config, Shape{100, 8}, Mode::eval);
  CHECK(eval.forward_workspace == 0);  // the fixed map runs in place on the caller's buffers
  CHECK(eval.evaluation_cache == 8 * (9 * sizeof(float) + sizeof(double)) + (3 + 5 * 8) * sizeof(double));
  CHECK_THROWS_AS(memory_plan<float>(config, Shape{100, 7}, Mode::train), std::invalid_argument);
}

TEST_CASE("memory_plan: contiguous groups in place need no copy and no draws in the workspace", "[memory_plan]") {
  // BatchNormalNorm2d (2, 3, 4, 5) contiguous in float, training with noise: the forward's
  // 3 verdicts (64 bytes aligned), the draws made in each group's own chunks; the backward's
  // 2 sums per channel (48 bytes, 64 aligned) and one group's partials (2 x 40 floats).
  const auto config = LayerConfig::batch_normal_norm_2d(3, Options{});
  const MemoryPlan plan = memory_plan<float>(config, Shape{2, 3, 4, 5}, Mode::train);
  CHECK(plan.forward_workspace == 64);
  CHECK(plan.backward_workspace == 64 + 2 * 40 * sizeof(float));
}

TEST_CASE("memory_plan: channels-last columns in place draw their noise block by block", "[memory_plan]") {
  // InstanceNormalNorm2d (3, 8, 4, 4) channels-last in float, training with noise: each
  // sample's 8 channels walked in place (24 groups of 16 values). The forward needs the
  // 24 verdicts (64 bytes aligned) and, for the one thread, one block's draws: 16 lanes
  // (the widest batch) x 16 values, by position and as drawn. The backward: 2 sums per
  // channel for each of the min(24, 64) = 24 accumulator blocks (384 doubles), the
  // partials of one block (2 x 16 x 16 floats) and one block's draws again.
  const auto config = LayerConfig::instance_normal_norm_2d(8, default_options(Form::instance_2d));
  const Shape shape{3, 8, 4, 4};
  const MemoryPlan plan = memory_plan<float>(config, shape, Mode::train, MemoryFormat::channels_last);
  CHECK(plan.forward_workspace == 64 + 2 * 16 * 16 * sizeof(float));
  CHECK(plan.backward_workspace == 384 * sizeof(double) + 2 * 16 * 16 * sizeof(float) + 2 * 16 * 16 * sizeof(float));
  // Kept noise: drawn whole in logical order (384 floats) and transposed into the kept
  // buffer (state); the backward reads it there and draws nothing.
  Execution keep;
  keep.keep_noise = true;
  const MemoryPlan kept = memory_plan<float>(config, shape, Mode::train, MemoryFormat::channels_last, keep);
  CHECK(kept.forward_workspace == 64 + 384 * sizeof(float));
  CHECK(kept.backward_workspace == 384 * sizeof(double) + 2 * 16 * 16 * sizeof(float));
  CHECK(kept.state == plan.state + 384 * sizeof(float));
  // What a call allocates is what the plan said.
  for (const bool keep_noise : {false, true}) {
    Harness<float> layer(config, shape);
    layer.randomize(4);
    layer.x = to_channels_last(layer.x, shape);
    layer.grad_out = to_channels_last(layer.grad_out, shape);
    layer.noise = NoiseSource<float>::philox(3, 1);
    layer.memory_format = MemoryFormat::channels_last;
    layer.execution.keep_noise = keep_noise;
    layer.forward(Mode::train);
    REQUIRE(layer.context.columns_in_place);
    CHECK(layer.context.workspace.capacity() == (keep_noise ? kept : plan).forward_workspace);
  }
}

TEMPLATE_TEST_CASE("A provided workspace is used as is: the same results, nothing allocated into it", "[memory_plan]",
                   float, double) {
  using T = TestType;
  Options options;
  options.estimator = LambdaEstimator::exact;  // the largest scratch: the search's interleaved copy
  for (const PlanCase& c : plan_cases(options)) {
    INFO(c.config.name() << " " << c.shape.to_string());
    const MemoryPlan plan = memory_plan<T>(c.config, c.shape, Mode::train, c.format);
    Harness<T> owned = layer_for<T>(c), provided = layer_for<T>(c);
    const std::size_t bytes = plan.workspace();
    std::unique_ptr<void, AlignedFree> block(bytes ? std::aligned_alloc(Workspace::alignment, bytes) : nullptr);
    if (bytes) REQUIRE(provided.context.workspace.provide(block.get(), bytes));
    owned.forward(Mode::train);
    provided.forward(Mode::train);
    owned.backward();
    provided.backward();
    CHECK(provided.out == owned.out);
    CHECK(provided.grad_x == owned.grad_x);
    CHECK(provided.grad_weight == owned.grad_weight);
    if (bytes) {
      CHECK(provided.context.workspace.is_provided());
      CHECK(provided.context.workspace.capacity() == bytes);
    }
  }
}

TEMPLATE_TEST_CASE("A provided workspace that is too small is refused before anything is written", "[memory_plan]", float,
                   double) {
  using T = TestType;
  const PlanCase c{LayerConfig::batch_normal_norm_1d(5, Options{}), Shape{40, 5}, MemoryFormat::contiguous};
  const MemoryPlan plan = memory_plan<T>(c.config, c.shape, Mode::train);
  REQUIRE(plan.forward_workspace > Workspace::alignment);
  const std::size_t bytes = plan.forward_workspace - Workspace::alignment;
  std::unique_ptr<void, AlignedFree> block(std::aligned_alloc(Workspace::alignment, bytes));
  Harness<T> layer = layer_for<T>(c);
  REQUIRE(layer.context.workspace.provide(block.get(), bytes));
  const auto out_before = layer.out;
  const auto running_before = layer.running_mean;
  const std::int64_t batches_before = layer.batches;
  try {
    layer.forward(Mode::train);
    FAIL("a forward with a too-small workspace was not refused");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("the workspace provided holds " + std::to_string(bytes) + " bytes") != std::string::npos);
    CHECK(what.find("memory_plan") != std::string::npos);
  }
  CHECK(layer.out == out_before);
  CHECK(layer.running_mean == running_before);
  CHECK(layer.batches == batches_before);
  // Misaligned or null blocks are not taken.
  CHECK_FALSE(layer.context.workspace.provide(static_cast<unsigned char*>(block.get()) + 8, bytes - 64));
  CHECK_FALSE(layer.context.workspace.provide(nullptr, bytes));
}

TEST_CASE("A copied context starts with an empty workspace and never shares a provided block", "[memory_plan]") {
  const PlanCase c{LayerConfig::batch_normal_norm_1d(5, Options{}), Shape{40, 5}, MemoryFormat::contiguous};
  Harness<float> layer = layer_for<float>(c);
  layer.forward(Mode::train);
  REQUIRE(layer.context.workspace.capacity() > 0);
  SavedContext<float> copy = layer.context;
  CHECK(copy.workspace.capacity() == 0);
  CHECK_FALSE(copy.workspace.is_provided());
  CHECK(copy.mean == layer.context.mean);  // the state is copied
}

TEMPLATE_TEST_CASE("memory_plan with keep_noise and with a thread pool: exact too", "[memory_plan]", float, double) {
  using T = TestType;
  Eigen::ThreadPool pool(3);
  Eigen::ThreadPoolDevice device(&pool, 3);
  Options options;
  options.noise_train = 0.4;
  int checked = 0;
  for (bool keep : {false, true})
    for (bool threaded : {false, true})
      for (const PlanCase& c : plan_cases(options)) {
        INFO(c.config.name() << " " << c.shape.to_string() << " keep_noise " << keep << " threads " << threaded);
        Execution execution;
        execution.keep_noise = keep;
        execution.device = threaded ? &device : nullptr;
        const MemoryPlan plan = memory_plan<T>(c.config, c.shape, Mode::train, c.format, execution);
        Harness<T> layer = layer_for<T>(c);
        layer.execution = execution;
        layer.forward(Mode::train);
        CHECK(layer.context.state_bytes() == plan.state);
        CHECK(layer.context.workspace.capacity() == plan.forward_workspace);
        layer.backward();
        CHECK(layer.context.workspace.capacity() == plan.workspace());
        ++checked;
      }
  CHECK(checked == 2 * 2 * static_cast<int>(plan_cases(Options{}).size()));
  // Kept draws are one value per element of state.
  const PlanCase c = plan_cases(options)[4];  // batch 2d (3, 3, 4, 5)
  Execution keep;
  keep.keep_noise = true;
  CHECK(memory_plan<T>(c.config, c.shape, Mode::train, c.format, keep).state ==
        memory_plan<T>(c.config, c.shape, Mode::train, c.format).state +
            static_cast<std::size_t>(3 * 3 * 4 * 5) * sizeof(T));
}
