// The distributed path without MPI: R threads of one process, each a rank holding
// a slice of the batch, reducing through normnorm::InProcessReducer.

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <normnorm/distributed/in_process.hpp>

#include "distributed_check.hpp"

using namespace normnorm;
namespace nd = normnorm::test::distributed;

namespace {

// Runs body(reducer) on `ranks` threads; rethrows nothing, returns each rank's exception message ("" if none).
std::vector<std::string> on_ranks(int ranks, const std::function<void(const InProcessReducer&)>& body) {
  InProcessGroup group(ranks);
  std::vector<std::string> errors(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      InProcessReducer reducer(group, r);
      try {
        body(reducer);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

template <class T>
void check_all_cases(int ranks) {
  for (const nd::Case& c : nd::cases(ranks)) {
    std::vector<nd::Errors> results(static_cast<std::size_t>(ranks));
    const auto errors = on_ranks(ranks, [&](const InProcessReducer& reducer) {
      results[static_cast<std::size_t>(reducer.rank())] = nd::check_rank<T>(c, reducer, Execution{});
    });
    nd::Errors worst;
    for (int r = 0; r < ranks; ++r) {
      INFO(c.name << " (" << (sizeof(T) == 8 ? "double" : "float") << ", " << ranks << " ranks) rank " << r);
      REQUIRE(errors[static_cast<std::size_t>(r)] == "");
      const nd::Errors& e = results[static_cast<std::size_t>(r)];
      INFO(e.to_string());
      CHECK(e.max() <= nd::tolerance<T>());
      CHECK(e.running_identical_on_ranks);
      CHECK(e.rerun_identical);
      worst.out = std::max(worst.out, e.out);
      worst.grad_x = std::max(worst.grad_x, e.grad_x);
      worst.grad_params = std::max(worst.grad_params, e.grad_params);
      worst.lambda = std::max(worst.lambda, e.lambda);
      worst.running = std::max(worst.running, e.running);
      worst.eval = std::max(worst.eval, e.eval);
    }
    std::printf("in-process R=%d %-6s %-36s %s\n", ranks, sizeof(T) == 8 ? "double" : "float", c.name.c_str(),
                worst.to_string().c_str());
  }
}

}  // namespace

TEMPLATE_TEST_CASE("distributed in process: every batch form matches one process", "[distributed]", float, double) {
  for (int ranks : {1, 2, 3}) check_all_cases<TestType>(ranks);
}

TEST_CASE("distributed in process: a thread pool per rank changes nothing", "[distributed][threads]") {
  Eigen::ThreadPool pool(2);
  Eigen::ThreadPoolDevice device(&pool, 2);
  nd::Case c{"batch2d big", LayerConfig::batch_normal_norm_2d(4), Shape{4, 40, 40}, {3, 0, 5}};
  std::vector<nd::Errors> results(3);
  const auto errors = on_ranks(3, [&](const InProcessReducer& reducer) {
    Execution execution;
    execution.device = &device;
    results[static_cast<std::size_t>(reducer.rank())] = nd::check_rank<double>(c, reducer, execution);
  });
  for (int r = 0; r < 3; ++r) {
    REQUIRE(errors[static_cast<std::size_t>(r)] == "");
    CHECK(results[static_cast<std::size_t>(r)].max() <= 1e-12);
    CHECK(results[static_cast<std::size_t>(r)].rerun_identical);
  }
}

TEMPLATE_TEST_CASE("distributed in process: the scalar path matches one process too", "[distributed]", float, double) {
  Execution scalar;
  scalar.simd_path = SimdPath::scalar;
  for (const nd::Case& c : nd::cases(3)) {
    std::vector<nd::Errors> results(3);
    const auto errors = on_ranks(3, [&](const InProcessReducer& reducer) {
      results[static_cast<std::size_t>(reducer.rank())] = nd::check_rank<TestType>(c, reducer, scalar);
    });
    for (int r = 0; r < 3; ++r) {
      INFO(c.name << " rank " << r << ": " << results[static_cast<std::size_t>(r)].to_string());
      REQUIRE(errors[static_cast<std::size_t>(r)] == "");
      CHECK(results[static_cast<std::size_t>(r)].max() <= nd::tolerance<TestType>());
      CHECK(results[static_cast<std::size_t>(r)].running_identical_on_ranks);
      CHECK(results[static_cast<std::size_t>(r)].rerun_identical);
    }
  }
}

TEMPLATE_TEST_CASE("distributed in process: kept noise (Execution::keep_noise) matches one process", "[distributed]",
                   float, double) {
  Execution keep;
  keep.keep_noise = true;  // each rank keeps its own slice's draws, at its local offsets
  for (const nd::Case& c : nd::cases(3)) {
    std::vector<nd::Errors> results(3);
    const auto errors = on_ranks(3, [&](const InProcessReducer& reducer) {
      results[static_cast<std::size_t>(reducer.rank())] = nd::check_rank<TestType>(c, reducer, keep);
    });
    for (int r = 0; r < 3; ++r) {
      INFO(c.name << " rank " << r << ": " << results[static_cast<std::size_t>(r)].to_string());
      REQUIRE(errors[static_cast<std::size_t>(r)] == "");
      CHECK(results[static_cast<std::size_t>(r)].max() <= nd::tolerance<TestType>());
      CHECK(results[static_cast<std::size_t>(r)].running_identical_on_ranks);
    }
  }
}

TEST_CASE("distributed in process: near-constant data far from zero recentre on every rank", "[distributed]") {
  // float values 1e6 + 0.05 z in runs of 1024: the float lane sums of the first pass put
  // the first mean off by more than the spread, so stage 2' runs (one more collective),
  // on every rank or none.
  nd::Case c{"batch2d near-constant", LayerConfig::batch_normal_norm_2d(3), Shape{3, 32, 32}, {3, 0, 4}};
  c.offset = 1e6;
  c.scale = 0.05;
  std::vector<nd::Errors> results(3);
  std::vector<std::size_t> calls(3);
  const auto errors = on_ranks(3, [&](const InProcessReducer& reducer) {
    results[static_cast<std::size_t>(reducer.rank())] = nd::check_rank<float>(c, reducer, Execution{});
    calls[static_cast<std::size_t>(reducer.rank())] = reducer.calls();
  });
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r << ": " << results[static_cast<std::size_t>(r)].to_string());
    REQUIRE(errors[static_cast<std::size_t>(r)] == "");
    CHECK(results[static_cast<std::size_t>(r)].max() <= 1e-5);
    CHECK(results[static_cast<std::size_t>(r)].running_identical_on_ranks);
    CHECK(results[static_cast<std::size_t>(r)].rerun_identical);
    CHECK(calls[static_cast<std::size_t>(r)] == calls[0]);
  }
  std::printf("in-process R=3 float  %-36s %s\n", c.name.c_str(), results[0].to_string().c_str());
  // Two runs of (train 7 + backward 2 + train 7 + eval 0) and two gathers of the check itself.
  CHECK(calls[0] == 2 * (7 + 2 + 7) + 2);
}

TEST_CASE("distributed in process: collectives per call are fixed", "[distributed]") {
  // Forward (training, noise): handshake + sum x + deviations + lambda sums + sum y + sum |y - mean y| = 6.
  // Backward: handshake + group sums = 2. Evaluation with running statistics: none.
  const LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
  const std::vector<index_t> batches = {2, 0, 3};
  on_ranks(3, [&](const InProcessReducer& reducer) {
    const index_t n = batches[static_cast<std::size_t>(reducer.rank())];
    const Shape shape{n, 3, 4, 4};
    std::vector<double> x(static_cast<std::size_t>(std::max<index_t>(n * 48, 1)), 1.0), out(x.size()), g(x.size(), 1.0),
        gx(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(double(i) + reducer.rank());
    std::vector<double> w(3, 1.0), b(3, 0.0), gw(3), gb(3), stats(12);
    std::int64_t count = 0;
    RunningStats<double> rs{stats.data(), stats.data() + 3, stats.data() + 6, stats.data() + 9, &count, 3};
    reset_running_stats(rs, 3);
    SavedContext<double> ctx;
    Execution execution;
    execution.reducer = &reducer;
    ForwardArgs<double> fa{x.data(), shape, out.data(), {w.data(), 3}, {b.data(), 3}, rs, NoiseSource<double>::philox(1, 0)};
    std::size_t before = reducer.calls(), bytes = reducer.bytes_sent();
    forward(config, Mode::train, fa, ctx, execution);
    CHECK(reducer.calls() - before == 6);
    CHECK(reducer.bytes_sent() - bytes == (9 + 12 * 3) * sizeof(double));
    BackwardArgs<double> ba{x.data(), shape, g.data(), {w.data(), 3}, gx.data(), gw.data(), gb.data()};
    before = reducer.calls();
    bytes = reducer.bytes_sent();
    backward(config, ba, ctx, execution);
    CHECK(reducer.calls() - before == 2);
    CHECK(reducer.bytes_sent() - bytes == (9 + 5 * 3) * sizeof(double));
    before = reducer.calls();
    forward(config, Mode::eval, fa, ctx, execution);
    CHECK(reducer.calls() - before == 0);
  });
}

TEST_CASE("distributed in process: the other forms ignore the reducer", "[distributed]") {
  on_ranks(2, [&](const InProcessReducer& reducer) {
    const LayerConfig config = LayerConfig::instance_normal_norm_2d(3);
    std::vector<double> x(2 * 3 * 16), out(x.size()), out_serial(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(double(i) * 0.7);
    SavedContext<double> ctx;
    ForwardArgs<double> fa{x.data(), Shape{2, 3, 4, 4}, out.data(), {nullptr, 0}, {nullptr, 0}, {}, NoiseSource<double>::philox(1, 0)};
    std::vector<double> w(3, 1.0), b(3, 0.0);
    fa.weight = {w.data(), 3};
    fa.bias = {b.data(), 3};
    Execution execution;
    execution.reducer = &reducer;
    forward(config, Mode::train, fa, ctx, execution);
    CHECK(reducer.calls() == 0);
    fa.output = out_serial.data();
    forward(config, Mode::train, fa, ctx);
    CHECK(out == out_serial);
  });
}

namespace {

// One training forward per rank; `tweak` changes rank r's call. Returns each rank's error
// and checks that nothing was written on any rank.
std::vector<std::string> failing_forward(int ranks, const std::function<void(int, LayerConfig&, std::vector<double>&)>& tweak) {
  std::vector<std::string> written(static_cast<std::size_t>(ranks));
  auto errors = on_ranks(ranks, [&](const InProcessReducer& reducer) {
    const int r = reducer.rank();
    LayerConfig config = LayerConfig::batch_normal_norm_2d(3);
    std::vector<double> x(2 * 3 * 9);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.3 * double(i) + r);
    tweak(r, config, x);
    const index_t C = config.num_features;
    x.resize(static_cast<std::size_t>(2 * C * 9), 0.5);
    std::vector<double> out(x.size(), -7.0), w(static_cast<std::size_t>(C), 1.0), b(static_cast<std::size_t>(C), 0.0),
        stats(static_cast<std::size_t>(4 * C), 0.25);
    std::int64_t count = 3;
    RunningStats<double> rs{stats.data(), stats.data() + C, stats.data() + 2 * C, stats.data() + 3 * C, &count, C};
    SavedContext<double> ctx;
    Execution execution;
    execution.reducer = &reducer;
    ForwardArgs<double> fa{x.data(), Shape{2, C, 3, 3}, out.data(), {w.data(), C}, {b.data(), C}, rs, NoiseSource<double>::philox(1, 0)};
    try {
      forward(config, Mode::train, fa, ctx, execution);
    } catch (...) {
      bool untouched = count == 3;
      for (double v : out) untouched = untouched && v == -7.0;
      for (double v : stats) untouched = untouched && v == 0.25;
      if (!untouched) written[static_cast<std::size_t>(r)] = "written";
      throw;
    }
  });
  for (int r = 0; r < ranks; ++r) CHECK(written[static_cast<std::size_t>(r)] == "");
  return errors;
}

}  // namespace

TEST_CASE("distributed in process: mismatches and bad input stop every rank with the same error", "[distributed]") {
  SECTION("channel counts differ") {
    const auto errors = failing_forward(3, [](int r, LayerConfig& config, std::vector<double>&) {
      if (r == 2) config = LayerConfig::batch_normal_norm_2d(4);
    });
    for (const auto& e : errors) CHECK(e == errors[0]);
    CHECK_THAT(errors[0], Catch::Contains("rank 2 has 4 channels, rank 0 has 3"));
    CHECK_THAT(errors[0], Catch::Contains("nothing was written on any rank"));
  }
  SECTION("options differ") {
    const auto errors = failing_forward(3, [](int r, LayerConfig& config, std::vector<double>&) {
      if (r == 1) config.options.eps = 1e-3;
    });
    for (const auto& e : errors) CHECK(e == errors[0]);
    CHECK_THAT(errors[0], Catch::Contains("rank 1's call differs from rank 0's"));
  }
  SECTION("non-finite input on one rank") {
    const auto errors = failing_forward(3, [](int r, LayerConfig&, std::vector<double>& x) {
      if (r == 1) x[20] = std::numeric_limits<double>::quiet_NaN();
    });
    for (const auto& e : errors) CHECK(e == errors[0]);
    CHECK_THAT(errors[0], Catch::Contains("contains NaN or Inf"));
    CHECK_THAT(errors[0], Catch::Contains("left unchanged"));
  }
  SECTION("infinite input on one rank") {
    const auto errors = failing_forward(2, [](int r, LayerConfig&, std::vector<double>& x) {
      if (r == 0) x[3] = std::numeric_limits<double>::infinity();
    });
    for (const auto& e : errors) CHECK(e == errors[0]);
    CHECK_THAT(errors[0], Catch::Contains("contains NaN or Inf"));
  }
  SECTION("an estimator that searches lambda is refused") {
    const auto errors = failing_forward(2, [](int, LayerConfig& config, std::vector<double>&) {
      config.options.estimator = LambdaEstimator::exact;
    });
    for (const auto& e : errors) CHECK(e == errors[0]);
    CHECK_THAT(errors[0], Catch::Contains("estimator exact is not supported with a Reducer"));
  }
  SECTION("one rank's own arguments are invalid") {
    const auto errors = failing_forward(3, [](int r, LayerConfig& config, std::vector<double>&) {
      if (r == 0) config.options.momentum = 2.0;  // refused by rank 0's own checks
    });
    CHECK_THAT(errors[0], Catch::Contains("momentum"));
    CHECK_THAT(errors[1], Catch::Contains("rank 0 refused the call"));
    CHECK(errors[1] == errors[2]);
  }
}

TEST_CASE("distributed in process: memory_plan with the reducer predicts each rank's workspace exactly",
          "[distributed][memory_plan]") {
  // BatchNormalNorm2d over 2 ranks (3 and 2 samples) and (N, C) batch 1d (transposed), with noise:
  // the forward keeps 9 doubles per channel of collective records, the backward 5.
  struct PlanCase {
    LayerConfig config;
    std::vector<Shape> shapes;  // per rank
  };
  const std::vector<PlanCase> cases = {
      {LayerConfig::batch_normal_norm_2d(4), {Shape{3, 4, 5, 5}, Shape{2, 4, 5, 5}}},
      {LayerConfig::batch_normal_norm_1d(6), {Shape{7, 6}, Shape{5, 6}}},
  };
  for (const PlanCase& c : cases) {
    std::vector<std::size_t> forward_bytes(2), total_bytes(2), want_forward(2), want_total(2), serial_forward(2);
    const auto errors = on_ranks(2, [&](const InProcessReducer& reducer) {
      const auto r = static_cast<std::size_t>(reducer.rank());
      const Shape shape = c.shapes[r];
      std::size_t n = 1;
      for (index_t d : shape) n *= static_cast<std::size_t>(d);
      std::vector<float> x(n), y(n), gy(n), gx(n);
      for (std::size_t i = 0; i < n; ++i) {
        x[i] = float(std::sin(0.7 * double(i + 13 * r)) + 0.1 * double(i % 5));
        gy[i] = float(std::cos(0.3 * double(i)));
      }
      std::vector<float> weight(4 + 2, 1.0f), bias(6, 0.0f), gw(6), gb(6), mean(6, 0.0f), var(6, 1.0f), lambda(6, 1.0f),
          norm(6, 0.8f);
      std::int64_t count = 0;
      const index_t channels = c.config.num_features;
      Execution execution;
      execution.reducer = &reducer;
      SavedContext<float> context;
      ForwardArgs<float> fa;
      fa.input = x.data();
      fa.shape = shape;
      fa.output = y.data();
      fa.weight = {weight.data(), channels};
      fa.bias = {bias.data(), channels};
      fa.running = {mean.data(), var.data(), lambda.data(), norm.data(), &count, channels};
      fa.noise = NoiseSource<float>::philox(3, 1);
      forward(c.config, Mode::train, fa, context, execution);
      forward_bytes[r] = context.workspace.capacity();
      BackwardArgs<float> ba;
      ba.input = x.data();
      ba.shape = shape;
      ba.grad_output = gy.data();
      ba.weight = {weight.data(), channels};
      ba.grad_input = gx.data();
      ba.grad_weight = gw.data();
      ba.grad_bias = gb.data();
      backward(c.config, ba, context, execution);
      total_bytes[r] = context.workspace.capacity();
      const MemoryPlan plan = memory_plan<float>(c.config, shape, Mode::train, MemoryFormat::contiguous, execution);
      want_forward[r] = plan.forward_workspace;
      want_total[r] = plan.workspace();
      serial_forward[r] = memory_plan<float>(c.config, shape, Mode::train).forward_workspace;
    });
    for (std::size_t r = 0; r < 2; ++r) {
      INFO(c.config.name() << " rank " << r);
      REQUIRE(errors[r] == "");
      CHECK(forward_bytes[r] == want_forward[r]);
      CHECK(total_bytes[r] == want_total[r]);
      CHECK(want_forward[r] > serial_forward[r]);  // the records are counted
    }
  }
}
