// Module::infer and the prepared evaluation it is built on (normnorm/evaluate.hpp):
// bit-identical to forward in evaluation, safe for concurrent callers.

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// A module with trained running statistics and non-trivial affine parameters.
template <class Module>
void train_a_little(Module& module, const Shape& shape) {
  Harness<typename std::remove_reference_t<decltype(module.weight())>::value_type> data(module.config(), shape);
  for (unsigned step = 0; step < 3; ++step) {
    data.randomize(40 + step);
    module.forward(data.x.data(), shape, data.out.data());
  }
  for (std::size_t i = 0; i < module.weight().size(); ++i) {
    module.weight()[i] = data.weight[i];
    module.bias()[i] = data.bias[i];
  }
}

}  // namespace

TEMPLATE_TEST_CASE("infer equals forward in evaluation, bit for bit, for every form", "[infer]", float, double) {
  for (EvaluationMap map : {EvaluationMap::exact, EvaluationMap::polynomial}) {
    for (const FormCase& fc : form_cases(Options{}, false)) {
      Options options = fc.config.options;
      options.evaluation_map = map;
      LayerConfig config = fc.config;
      config.options = options;
      for (MemoryFormat format : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
        if (format == MemoryFormat::channels_last && (config.form == Form::batch_1d || config.form == Form::layer)) continue;
        INFO(config.name() << " map " << int(map) << " format " << int(format));
        NormalNormModule<TestType> module(config, 5);
        train_a_little(module, fc.shape);
        Harness<TestType> data(config, fc.shape);
        data.randomize(77);
        std::vector<TestType> inferred(data.x.size()), evaluated(data.x.size());
        module.infer(data.x.data(), fc.shape, inferred.data(), format);  // still in training mode: infer evaluates anyway
        module.eval();
        module.forward(data.x.data(), fc.shape, evaluated.data(), format);
        CHECK(same_bits(inferred, evaluated));
      }
    }
  }
}

TEST_CASE("infer follows parameters changed after eval()", "[infer]") {
  BatchNormalNorm2d<float> module(3);
  train_a_little(module, Shape{4, 3, 2, 5});
  module.eval();
  Harness<float> data(module.config(), Shape{2, 3, 2, 5});
  data.randomize(3);
  std::vector<float> before(data.x.size()), after(data.x.size()), evaluated(data.x.size());
  module.infer(data.x.data(), data.shape, before.data());
  module.running_lambda()[1] = 0.25f;  // e.g. a checkpoint loaded through the spans
  module.bias()[2] = 3.0f;
  module.infer(data.x.data(), data.shape, after.data());
  module.forward(data.x.data(), data.shape, evaluated.data());
  CHECK(same_bits(after, evaluated));
  CHECK_FALSE(same_bits(after, before));
}

TEST_CASE("prepared evaluation refuses a cache of another config and an unprepared one", "[infer]") {
  const auto config = LayerConfig::batch_normal_norm_2d(3);
  Harness<float> data(config, Shape{2, 3, 2, 2});
  EvaluationCache<float> cache;
  const EvaluateArgs<float> args{data.x.data(), data.shape, data.out.data()};
  Status status = try_evaluate(config, args, cache);
  CHECK(status.message().find("not prepared") != std::string::npos);
  prepare_evaluation(config, Span<const float>{data.weight.data(), 3}, Span<const float>{data.bias.data(), 3},
                     data.running(), cache);
  CHECK(try_evaluate(config, args, cache).ok());
  Options other = config.options;
  other.eps = 1e-3;
  status = try_evaluate(LayerConfig::batch_normal_norm_2d(3, other), args, cache);
  CHECK(status.message().find("prepared for another config (eps") != std::string::npos);
  other = config.options;
  other.track_running_stats = false;
  status = try_evaluate(LayerConfig::batch_normal_norm_2d(3, other), args, cache);
  CHECK(status.message().find("needs a batch form with track_running_stats") != std::string::npos);
}

TEMPLATE_TEST_CASE("infer from 4 threads on one module equals the serial call", "[infer][threads]", float, double) {
  struct Case {
    LayerConfig config;
    std::vector<Shape> shapes;
  };
  Options polynomial = default_options(Form::batch_2d);
  polynomial.evaluation_map = EvaluationMap::polynomial;
  const Case cases[] = {
      {LayerConfig::batch_normal_norm_2d(4, polynomial), {Shape{2, 4, 3, 5}, Shape{7, 4, 3, 5}}},
      {LayerConfig::batch_normal_norm_1d(6), {Shape{5, 6}, Shape{9, 6}}},
      {LayerConfig::layer_normal_norm(Shape{4, 5}), {Shape{3, 4, 5}, Shape{8, 4, 5}}},
      {LayerConfig::group_normal_norm(2, 4), {Shape{2, 4, 3, 3}, Shape{5, 4, 3, 3}}},
  };
  for (const Case& c : cases) {
    INFO(c.config.name());
    NormalNormModule<TestType> module(c.config, 3);
    train_a_little(module, c.shapes[0]);
    module.eval();
    std::vector<std::vector<TestType>> inputs, expected;
    for (std::size_t k = 0; k < c.shapes.size(); ++k) {
      Harness<TestType> data(c.config, c.shapes[k]);
      data.randomize(unsigned(90 + k));
      inputs.push_back(data.x);
      expected.emplace_back(data.x.size());
      module.infer(inputs[k].data(), c.shapes[k], expected[k].data());
    }
    constexpr int threads = 4, calls = 25;
    std::vector<int> mismatches(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const std::size_t k = std::size_t(t) % c.shapes.size();
        std::vector<TestType> out(inputs[k].size());
        for (int call = 0; call < calls; ++call) {
          module.infer(inputs[k].data(), c.shapes[k], out.data());
          if (!same_bits(out, expected[k])) ++mismatches[std::size_t(t)];
        }
      });
    for (auto& thread : pool) thread.join();
    for (int t = 0; t < threads; ++t) CHECK(mismatches[std::size_t(t)] == 0);
  }
}
