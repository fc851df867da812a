// Heap use: after the first call has sized the saved context, further calls of
// the same shape allocate nothing, in evaluation and in training (serial path).
// operator new is replaced for this test binary with a counting one.

#include <atomic>
#include <cstdlib>
#include <new>

#include <catch2/catch.hpp>

#include "harness.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace normnorm;
using namespace normnorm::test;

TEMPLATE_TEST_CASE("repeated calls allocate nothing once the context is sized", "[allocations]", float, double) {
  std::vector<FormCase> cases = form_cases(Options{}, false);
  cases.push_back({LayerConfig::batch_normal_norm_2d(3, default_options(Form::batch_2d)), Shape{2, 3, 4, 5}});
  Options polynomial = default_options(Form::batch_2d);
  polynomial.evaluation_map = EvaluationMap::polynomial;  // its tables live in the context too
  cases.push_back({LayerConfig::batch_normal_norm_2d(3, polynomial), Shape{2, 3, 4, 20}});
  for (const FormCase& fc : cases) {
    for (MemoryFormat format : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      if (format == MemoryFormat::channels_last && (fc.config.form == Form::batch_1d || fc.config.form == Form::layer)) continue;
      INFO(fc.config.name() << (format == MemoryFormat::channels_last ? " channels_last" : ""));
      Harness<TestType> layer(fc.config, fc.shape);
      layer.randomize(4);
      layer.memory_format = format;
      layer.noise = NoiseSource<TestType>::philox(1, 1);
      for (Mode mode : {Mode::train, Mode::eval}) {
        layer.forward(mode);  // sizes the context
        layer.backward();
        const long before = allocations.load();
        layer.forward(mode);
        const long after_forward = allocations.load();
        layer.backward();
        const long after_backward = allocations.load();
        INFO((mode == Mode::train ? "train" : "eval"));
        CHECK(after_forward - before == 0);
        CHECK(after_backward - after_forward == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("a module's infer allocates nothing once eval() has prepared it", "[allocations]", float, double,
                   Eigen::bfloat16, Eigen::half) {
  using S = TestType;
  for (EvaluationMap map : {EvaluationMap::exact, EvaluationMap::polynomial}) {
    Options options = default_options(Form::batch_2d);
    options.evaluation_map = map;
    BatchNormalNorm2d<S> module(4, options);
    Harness<compute_t<S>> data(module.config(), Shape{3, 4, 5, 6});
    data.randomize(9);
    std::vector<S> x(data.x.size()), out(data.x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = S(data.x[i]);
    module.forward(x.data(), data.shape, out.data());  // training: new running statistics
    module.eval();                                      // prepares the cache
    const long before = allocations.load();
    module.infer(x.data(), data.shape, out.data());
    module.infer(x.data(), data.shape, out.data(), MemoryFormat::channels_last);
    CHECK(allocations.load() - before == 0);
  }
}

TEST_CASE("the allocation counter counts", "[allocations]") {
  // Through a volatile pointer, so the optimizer cannot elide the new/delete pair.
  static std::vector<int>* volatile sink = nullptr;
  const long before = allocations.load();
  sink = new std::vector<int>(100);
  delete sink;
  CHECK(allocations.load() - before >= 2);
}
