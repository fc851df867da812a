// normnorm_bench: the speed of every layer form, in the three ways a layer runs.
//
// One benchmark per (form, mode, element type, thread count, shape), named
//
//   normnorm/<form>/<mode>/<dtype>/threads:<n>/<shape>
//
//   form    batch_1d | batch_2d | layer | group | instance_2d   (normnorm::Form's names)
//           | batch_2d_nhwc | group_nhwc | instance_2d_nhwc  (the same forms on channels-last
//           input, MemoryFormat::channels_last: PyTorch's torch.channels_last)
//   mode    train_fwd      training forward (statistics, lambda, transform, noise, affine)
//           train_fwd_bwd  training forward then backward (grad_input, grad_weight, grad_bias)
//           train_fwd_bwd_kept  the same with Execution::keep_noise (the backward reads the
//                          forward's draws instead of drawing them again)
//           eval_fwd       evaluation forward (running statistics for the batch forms)
//           eval_fwd_poly  the same with EvaluationMap::polynomial (batch forms, float only)
//   dtype   float | double | bfloat16 | half (2-byte storage, float compute; 1 thread)
//   shape   the input shape in PyTorch order, e.g. 32x64x32x32 (the logical (N, C, H, W)
//           shape also for the channels-last forms, as PyTorch's x.shape gives it)
//
// Google Benchmark appends "/real_time" because every benchmark times wall-clock
// time (UseRealTime: the only honest clock once work runs on a thread pool).
// Pick rows with --benchmark_filter (a regex), e.g.
//
//   normnorm_bench --benchmark_filter='^normnorm/batch_2d/train_fwd/float/threads:1/32x64x32x32'
//
// Throughput is reported as items_per_second = input elements per second.
// Every layer uses the form's default options (noise 0.4, or 1.0 for the layer
// form, with Philox noise whose call counter advances every iteration), affine
// weight 1 and bias 0 (PyTorch's initialisation), and standard-normal input.
// All buffers are allocated and filled before the timed loop.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <normnorm/normnorm.hpp>

#include <benchmark/benchmark.h>

namespace {

using normnorm::Form;
using normnorm::index_t;
using normnorm::LayerConfig;
using normnorm::Shape;

enum class BenchMode { train_fwd, train_fwd_bwd, train_fwd_bwd_kept, eval_fwd, eval_fwd_poly };

const char* mode_tag(BenchMode mode) {
  switch (mode) {
    case BenchMode::train_fwd: return "train_fwd";
    case BenchMode::train_fwd_bwd: return "train_fwd_bwd";
    case BenchMode::train_fwd_bwd_kept: return "train_fwd_bwd_kept";
    case BenchMode::eval_fwd: return "eval_fwd";
    case BenchMode::eval_fwd_poly: return "eval_fwd_poly";
  }
  return "?";
}

// One benchmarked layer: a form, its input shape, and how the layer is built.
struct Case {
  const char* form_tag;
  Form form;
  Shape shape;         // logical (N, C, ...) order whatever the memory format
  index_t num_groups;  // the group form's G; unused by the others
  normnorm::MemoryFormat memory_format = normnorm::MemoryFormat::contiguous;

  LayerConfig config() const {
    switch (form) {
      case Form::batch_1d: return LayerConfig::batch_normal_norm_1d(shape[1]);
      case Form::batch_2d: return LayerConfig::batch_normal_norm_2d(shape[1]);
      case Form::layer: return LayerConfig::layer_normal_norm({shape[shape.rank() - 1]});  // last axis
      case Form::group: return LayerConfig::group_normal_norm(num_groups, shape[1]);
      case Form::instance_2d: return LayerConfig::instance_normal_norm_2d(shape[1]);
      case Form::batch_3d: return LayerConfig::batch_normal_norm_3d(shape[1]);
      case Form::instance_1d: return LayerConfig::instance_normal_norm_1d(shape[1]);
      case Form::instance_3d: return LayerConfig::instance_normal_norm_3d(shape[1]);
    }
    return LayerConfig{};
  }
  std::string shape_tag() const {
    std::string tag;
    for (index_t d : shape) tag += (tag.empty() ? "" : "x") + std::to_string(d);
    return tag;
  }
  index_t count() const {
    index_t n = 1;
    for (index_t d : shape) n *= d;
    return n;
  }
};

// The benchmarked shapes (issue 4). compare_pytorch.py lists the same ones.
const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"batch_1d", Form::batch_1d, {128, 784}, 1},
      {"batch_2d", Form::batch_2d, {32, 64, 32, 32}, 1},
      {"batch_2d", Form::batch_2d, {8, 256, 14, 14}, 1},
      {"layer", Form::layer, {64, 196, 384}, 1},
      {"group", Form::group, {16, 128, 28, 28}, 32},
      {"instance_2d", Form::instance_2d, {16, 64, 64, 64}, 1},
      // Channels-last (N, H, W, C) input, against PyTorch's layers on torch.channels_last.
      {"batch_2d_nhwc", Form::batch_2d, {32, 64, 32, 32}, 1, normnorm::MemoryFormat::channels_last},
      {"group_nhwc", Form::group, {16, 128, 28, 28}, 32, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {16, 64, 64, 64}, 1, normnorm::MemoryFormat::channels_last},
  };
  return all;
}

// 64-byte aligned storage (as PyTorch's CPU allocator gives), so neither side of a
// comparison gains from alignment the other lacks.
template <class T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(index_t n) : size_(n) {
    const std::size_t bytes = ((static_cast<std::size_t>(n) * sizeof(T) + 63) / 64) * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (!data_) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  index_t size_ = 0;
};

// Everything one layer call touches: input, output, gradients, parameters,
// running statistics and the saved context.
// T is the tensors' storage type; parameters and statistics are in its compute type C.
template <class T>
struct Fixture {
  using C = normnorm::compute_t<T>;
  static constexpr std::uint64_t data_seed = 20250401;
  static constexpr std::uint64_t noise_seed = 1;

  Case layer;
  LayerConfig config;
  AlignedBuffer<T> input, output, grad_output, grad_input;
  AlignedBuffer<C> weight, bias, grad_weight, grad_bias;
  AlignedBuffer<C> running_mean, running_var, running_lambda, running_norm;
  std::int64_t num_batches_tracked = 0;
  normnorm::SavedContext<C> context;
  std::uint64_t training_calls = 0;  // the Philox call counter: one per training forward

  explicit Fixture(const Case& c)
      : layer(c),
        config(c.config()),
        input(c.count()),
        output(c.count()),
        grad_output(c.count()),
        grad_input(c.count()),
        weight(config.num_affine()),
        bias(config.num_affine()),
        grad_weight(config.num_affine()),
        grad_bias(config.num_affine()),
        running_mean(config.num_running()),
        running_var(config.num_running()),
        running_lambda(config.num_running()),
        running_norm(config.num_running()) {
    // Standard-normal input and output gradient (torch.randn in compare_pytorch.py),
    // drawn with normnorm's own Philox normals: fast enough for 5M-element tensors.
    // The same draws serve a channels-last case: i.i.d. values need no reordering.
    std::vector<C> draws(static_cast<std::size_t>(c.count()));
    normnorm::NoiseSource<C>::philox(data_seed, 0).fill(0, c.count(), draws.data());
    for (index_t i = 0; i < c.count(); ++i) input.data()[i] = T(draws[static_cast<std::size_t>(i)]);
    normnorm::NoiseSource<C>::philox(data_seed, 1).fill(0, c.count(), draws.data());
    for (index_t i = 0; i < c.count(); ++i) grad_output.data()[i] = T(draws[static_cast<std::size_t>(i)]);
    for (index_t i = 0; i < config.num_affine(); ++i) weight.data()[i] = C(1), bias.data()[i] = C(0);
    if (config.has_running_stats()) normnorm::reset_running_stats(running(), config.num_running());
    // Touch every output page once so no timed iteration pays the first-touch faults.
    for (index_t i = 0; i < c.count(); ++i) output.data()[i] = T(0.0f), grad_input.data()[i] = T(0.0f);
  }

  normnorm::RunningStats<C> running() {
    normnorm::RunningStats<C> stats;
    if (!config.has_running_stats()) return stats;
    stats.mean = running_mean.data();
    stats.var = running_var.data();
    stats.lambda = running_lambda.data();
    stats.norm = running_norm.data();
    stats.num_batches_tracked = &num_batches_tracked;
    stats.size = config.num_running();
    return stats;
  }

  normnorm::ForwardArgs<T> forward_args() {
    normnorm::ForwardArgs<T> args;
    args.input = input.data();
    args.shape = layer.shape;
    args.output = output.data();
    args.weight = {weight.data(), weight.size()};
    args.bias = {bias.data(), bias.size()};
    args.running = running();
    args.memory_format = layer.memory_format;
    return args;
  }

  normnorm::BackwardArgs<T> backward_args() {
    normnorm::BackwardArgs<T> args;
    args.input = input.data();
    args.shape = layer.shape;
    args.grad_output = grad_output.data();
    args.weight = {weight.data(), weight.size()};
    args.grad_input = grad_input.data();
    args.grad_weight = grad_weight.data();
    args.grad_bias = grad_bias.data();
    args.memory_format = layer.memory_format;
    return args;
  }

  void train_forward(normnorm::ForwardArgs<T>& args, const normnorm::Execution& execution) {
    args.noise = normnorm::NoiseSource<C>::philox(noise_seed, training_calls++);
    normnorm::forward(config, normnorm::Mode::train, args, context, execution);
  }
};

// Google Benchmark calls a benchmark function several times while it sizes the
// iteration count; keep the last fixture of each element type so the (large)
// buffers are built once per layer, not once per call. Benchmarks are registered
// layer by layer, so at most one float and one double fixture are alive.
template <class T>
Fixture<T>& fixture_for(const Case& c) {
  static std::unique_ptr<Fixture<T>> cached;
  if (!cached || std::strcmp(cached->layer.form_tag, c.form_tag) != 0 || cached->layer.shape != c.shape) {
    cached.reset();  // free the previous layer's buffers before allocating the next
    cached = std::make_unique<Fixture<T>>(c);
  }
  return *cached;
}

// How lambda is estimated (docs/lambda-search.md); the form's default is the paper's newton_step.
struct EstimatorSpec {
  const char* tag;
  normnorm::LambdaEstimator estimator;
  int iterations;
};
const EstimatorSpec paper_estimator{"newton_step", normnorm::LambdaEstimator::newton_step, 1};

template <class T>
void run_layer(benchmark::State& state, const Case& c, BenchMode mode, int threads,
               const EstimatorSpec& estimator = paper_estimator, bool columns_in_place = true) {
  try {
    Fixture<T>& f = fixture_for<T>(c);
    f.config.options.estimator = estimator.estimator;  // the fixture is shared by the rows of a layer
    f.config.options.newton_iterations = estimator.iterations;
    const bool evaluation = mode == BenchMode::eval_fwd || mode == BenchMode::eval_fwd_poly;
    f.config.options.evaluation_map =
        mode == BenchMode::eval_fwd_poly ? normnorm::EvaluationMap::polynomial : normnorm::EvaluationMap::exact;
    // The thread pool lives outside the timed loop; with one thread normnorm runs
    // on the calling thread (no device).
    std::unique_ptr<Eigen::ThreadPool> pool;
    std::unique_ptr<Eigen::ThreadPoolDevice> device;
    normnorm::Execution execution;
    if (threads > 1) {
      pool = std::make_unique<Eigen::ThreadPool>(threads);
      device = std::make_unique<Eigen::ThreadPoolDevice>(pool.get(), threads);
      execution.device = device.get();
    }
    execution.keep_noise = mode == BenchMode::train_fwd_bwd_kept;
    execution.columns_in_place = columns_in_place;
    normnorm::ForwardArgs<T> fa = f.forward_args();
    const normnorm::BackwardArgs<T> ba = f.backward_args();
    // Evaluation of the batch forms reads running statistics: give them trained
    // values (running lambda != 1) as a real model would have.
    if (evaluation)
      for (int step = 0; step < 3; ++step) f.train_forward(fa, execution);

    for (auto _ : state) {
      if (evaluation) {
        normnorm::forward(f.config, normnorm::Mode::eval, fa, f.context, execution);
      } else {
        f.train_forward(fa, execution);
        if (mode == BenchMode::train_fwd_bwd || mode == BenchMode::train_fwd_bwd_kept)
          normnorm::backward(f.config, ba, f.context, execution);
      }
      benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * c.count());
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

std::string benchmark_name(const Case& c, BenchMode mode, const char* dtype, int threads) {
  return std::string("normnorm/") + c.form_tag + "/" + mode_tag(mode) + "/" + dtype + "/threads:" +
         std::to_string(threads) + "/" + c.shape_tag();
}

// normnorm_bench_float (NORMNORM_BENCH_FLOAT_ONLY) instantiates only the float kernels
// with the paper's estimator: a smaller program, for the inlining comparison.
#ifdef NORMNORM_BENCH_FLOAT_ONLY
constexpr bool float_only = true;
template <class... Args>
void run_double_layer(Args&&...) {}
template <class S, class... Args>
void run_narrow_layer(Args&&...) {}
#else
constexpr bool float_only = false;
template <class... Args>
void run_double_layer(Args&&... args) {
  run_layer<double>(std::forward<Args>(args)...);
}
template <class S, class... Args>
void run_narrow_layer(Args&&... args) {
  run_layer<S>(std::forward<Args>(args)...);
}
#endif

void register_all() {
  const BenchMode modes[] = {BenchMode::train_fwd, BenchMode::train_fwd_bwd, BenchMode::train_fwd_bwd_kept,
                             BenchMode::eval_fwd, BenchMode::eval_fwd_poly};
  const int thread_counts[] = {1, 2};
  for (const Case& c : cases()) {
    for (const char* dtype : {"float", "double"}) {
      const bool is_float = std::string(dtype) == "float";
      for (BenchMode mode : modes) {
        const bool batch_form = c.form == Form::batch_1d || c.form == Form::batch_2d;  // batch_2d_nhwc too
        if (mode == BenchMode::eval_fwd_poly && (!is_float || !batch_form)) continue;
        for (int threads : thread_counts) {
          if (!is_float && float_only) continue;
          auto* b = benchmark::RegisterBenchmark(
              benchmark_name(c, mode, dtype, threads).c_str(), [c, mode, threads, is_float](benchmark::State& state) {
                if (is_float)
                  run_layer<float>(state, c, mode, threads);
                else
                  run_double_layer(state, c, mode, threads);
              });
          b->UseRealTime()->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  // The lambda estimators' cost (docs/lambda-search.md), one thread, training:
  //   estimator/<estimator>/<form>/<mode>/<dtype>/threads:1/<shape>
  // (the paper's newton_step is the rows above).
  static const EstimatorSpec estimators[] = {
      {"gradient_step", normnorm::LambdaEstimator::gradient_step, 1},
      {"newton1", normnorm::LambdaEstimator::newton, 1},
      {"newton2", normnorm::LambdaEstimator::newton, 2},
      {"newton4", normnorm::LambdaEstimator::newton, 4},
      {"exact", normnorm::LambdaEstimator::exact, 1},
  };
  // Groups that are columns ((N, C) and channels-last batch forms, channels-last instance forms), walked in place
  // or on a transposed copy (Execution::columns_in_place): the measurement behind
  // engine::columns_pay_off. One thread, float:
  //   placement/<in_place|on_copy>/<form>/<mode>/float/threads:1/<shape>
  static const Case column_cases[] = {
      {"batch_1d", Form::batch_1d, {128, 784}, 1},
      {"batch_1d", Form::batch_1d, {128, 64}, 1},
      {"batch_1d", Form::batch_1d, {128, 16}, 1},
      {"batch_1d", Form::batch_1d, {128, 8}, 1},
      {"batch_1d", Form::batch_1d, {128, 4}, 1},
      {"batch_1d", Form::batch_1d, {128, 2}, 1},
      {"batch_1d", Form::batch_1d, {4096, 8}, 1},
      {"batch_2d_nhwc", Form::batch_2d, {32, 64, 32, 32}, 1, normnorm::MemoryFormat::channels_last},
      {"batch_2d_nhwc", Form::batch_2d, {8, 256, 14, 14}, 1, normnorm::MemoryFormat::channels_last},
      {"batch_2d_nhwc", Form::batch_2d, {16, 4, 64, 64}, 1, normnorm::MemoryFormat::channels_last},
      {"batch_2d_nhwc", Form::batch_2d, {16, 2, 64, 64}, 1, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {16, 64, 64, 64}, 1, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {16, 64, 32, 32}, 1, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {8, 256, 14, 14}, 1, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {16, 4, 64, 64}, 1, normnorm::MemoryFormat::channels_last},
      {"instance_2d_nhwc", Form::instance_2d, {2, 64, 128, 128}, 1, normnorm::MemoryFormat::channels_last},
  };
  for (const Case& c : column_cases)
    for (BenchMode mode : {BenchMode::train_fwd, BenchMode::train_fwd_bwd, BenchMode::train_fwd_bwd_kept})
      for (bool in_place : {true, false}) {
        const std::string name = std::string("placement/") + (in_place ? "in_place/" : "on_copy/") + c.form_tag + "/" +
                                 mode_tag(mode) + "/float/threads:1/" + c.shape_tag();
        auto* b = benchmark::RegisterBenchmark(name.c_str(), [c, mode, in_place](benchmark::State& state) {
          run_layer<float>(state, c, mode, 1, paper_estimator, in_place);
        });
        b->UseRealTime()->Unit(benchmark::kMillisecond);
      }
  if (float_only) return;
  // 2-byte storage (float compute, converted at the API boundary): the same rows in
  // bfloat16 and half, one thread, beside the float rows above.
  for (const Case& c : cases())
    for (const char* dtype : {"bfloat16", "half"})
      for (BenchMode mode : {BenchMode::train_fwd, BenchMode::train_fwd_bwd, BenchMode::eval_fwd}) {
        const bool bf16 = std::string(dtype) == "bfloat16";
        auto* b = benchmark::RegisterBenchmark(benchmark_name(c, mode, dtype, 1).c_str(),
                                               [c, mode, bf16](benchmark::State& state) {
                                                 if (bf16)
                                                   run_narrow_layer<Eigen::bfloat16>(state, c, mode, 1);
                                                 else
                                                   run_narrow_layer<Eigen::half>(state, c, mode, 1);
                                               });
        b->UseRealTime()->Unit(benchmark::kMillisecond);
      }
  for (const Case& c : cases()) {
    // These rows compare the estimators, not the layouts: contiguous cases only.
    if (c.memory_format != normnorm::MemoryFormat::contiguous) continue;
    for (const char* dtype : {"float", "double"})
      for (BenchMode mode : {BenchMode::train_fwd, BenchMode::train_fwd_bwd})
        for (const EstimatorSpec& e : estimators) {
          const bool is_float = std::string(dtype) == "float";
          const std::string name = std::string("estimator/") + e.tag + "/" + c.form_tag + "/" + mode_tag(mode) + "/" +
                                   dtype + "/threads:1/" + c.shape_tag();
          auto* b = benchmark::RegisterBenchmark(name.c_str(), [c, mode, is_float, e](benchmark::State& state) {
            if (is_float)
              run_layer<float>(state, c, mode, 1, e);
            else
              run_double_layer(state, c, mode, 1, e);
          });
          b->UseRealTime()->Unit(benchmark::kMillisecond);
        }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::AddCustomContext("normnorm_version", NORMNORM_VERSION_STRING);
  benchmark::AddCustomContext("normnorm_simd_arch", normnorm::resolved_simd_arch());
#ifdef NORMNORM_BENCH_MARCH_NATIVE
  benchmark::AddCustomContext("normnorm_bench_flags", "-O3 -march=native");
#else
  benchmark::AddCustomContext("normnorm_bench_flags", "-O3");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
