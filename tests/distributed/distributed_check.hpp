#pragma once
// The distributed checks, transport-agnostic: each rank runs its slice of a global
// batch through train forward, backward, a second train forward and an eval forward
// with a Reducer, and compares with the single-process run on the whole batch
// (computed on every rank from the same deterministic data). Used by the in-process
// (threads) test and the MPI test.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <normnorm/normnorm.hpp>

namespace normnorm::test::distributed {

struct Case {
  std::string name;
  LayerConfig config;
  Shape sample_shape;                 // one sample's shape (without N), logical order
  std::vector<index_t> batches;       // samples per rank
  MemoryFormat format = MemoryFormat::contiguous;
  double offset = 0, scale = 1;  // x = offset + scale * (the skewed draws)
};

// Every batch form, with option variants, for `ranks` ranks (uneven; one rank empty when ranks > 2).
inline std::vector<Case> cases(int ranks) {
  std::vector<index_t> uneven;
  if (ranks == 1) uneven = {7};
  else if (ranks == 2) uneven = {2, 5};
  else {
    uneven.assign(static_cast<std::size_t>(ranks), 2);
    uneven[0] = 3;
    uneven[1] = 0;  // a rank with no samples
    uneven[static_cast<std::size_t>(ranks - 1)] = 4;
  }
  std::vector<index_t> one_each(uneven);  // batch 1d (N, C): a rank may hold a single sample
  if (ranks > 1) one_each[0] = 1;
  auto opts = [](Form f) { return default_options(f); };
  std::vector<Case> out;
  out.push_back({"batch1d (N,C)", LayerConfig::batch_normal_norm_1d(5, opts(Form::batch_1d)), Shape{5}, one_each});
  out.push_back({"batch1d (N,C,L)", LayerConfig::batch_normal_norm_1d(4, opts(Form::batch_1d)), Shape{4, 9}, uneven});
  out.push_back({"batch2d", LayerConfig::batch_normal_norm_2d(3, opts(Form::batch_2d)), Shape{3, 5, 7}, uneven});
  out.push_back({"batch2d channels_last", LayerConfig::batch_normal_norm_2d(3, opts(Form::batch_2d)), Shape{3, 4, 5},
                 uneven, MemoryFormat::channels_last});
  out.push_back({"batch3d", LayerConfig::batch_normal_norm_3d(2, opts(Form::batch_3d)), Shape{2, 3, 4, 5}, uneven});
  {
    Options o = opts(Form::batch_2d);
    o.track_running_stats = false;  // eval reduces too (batch statistics)
    o.momentum = std::nullopt;
    out.push_back({"batch2d no running stats", LayerConfig::batch_normal_norm_2d(3, o), Shape{3, 6, 6}, uneven});
  }
  {
    Options o = opts(Form::batch_2d);
    o.order = 1;
    o.momentum = std::nullopt;  // cumulative average
    out.push_back({"batch2d order 1, cumulative", LayerConfig::batch_normal_norm_2d(3, o), Shape{3, 6, 6}, uneven});
  }
  {
    Options o = opts(Form::batch_1d);
    o.standardize = false;
    o.affine = false;
    out.push_back({"batch1d no standardize, no affine", LayerConfig::batch_normal_norm_1d(4, o), Shape{4, 8}, uneven});
  }
  {
    Options o = opts(Form::batch_2d);
    o.power_transform = false;
    out.push_back({"batch2d no power transform", LayerConfig::batch_normal_norm_2d(3, o), Shape{3, 5, 5}, uneven});
  }
  {
    Options o = opts(Form::batch_2d);
    o.noise_train = 0;
    out.push_back({"batch2d no noise", LayerConfig::batch_normal_norm_2d(3, o), Shape{3, 5, 5}, uneven});
  }
  return out;
}

inline index_t product(const Shape& s) {
  index_t n = 1;
  for (index_t d : s) n *= d;
  return n;
}
inline Shape with_batch(index_t n, const Shape& sample) {
  index_t dims[Shape::max_rank];
  dims[0] = n;
  for (int i = 0; i < sample.rank(); ++i) dims[i + 1] = sample[i];
  return Shape(dims, sample.rank() + 1);
}

// What one rank (or the single process) ends with.
template <class T>
struct Run {
  std::vector<T> out1, grad_x, grad_weight, grad_bias, out2, eval_out;
  std::vector<double> lambda1;
  std::vector<T> running;  // mean, var, lambda, norm after the two training calls
  std::int64_t batches = 0;
};

// The global batch's data in memory order (samples contiguous in either format), and parameters.
template <class T>
struct GlobalData {
  std::vector<T> x, grad_out, weight, bias;
};

template <class T>
inline GlobalData<T> make_data(const Case& c, index_t total) {
  GlobalData<T> d;
  const index_t per = product(c.sample_shape);
  std::mt19937_64 rng(1234 + static_cast<unsigned>(c.name.size()));
  std::normal_distribution<double> normal;
  d.x.resize(static_cast<std::size_t>(total * per));
  d.grad_out.resize(d.x.size());
  for (auto& v : d.x) v = T(c.offset + c.scale * (std::exp(0.7 * normal(rng)) + 0.3 * normal(rng) + 2.0));
  for (auto& v : d.grad_out) v = T(normal(rng));
  d.weight.resize(static_cast<std::size_t>(c.config.num_affine()));
  d.bias.resize(d.weight.size());
  for (auto& v : d.weight) v = T(1.0 + 0.3 * normal(rng));
  for (auto& v : d.bias) v = T(0.2 * normal(rng));
  return d;
}

// Runs the steps on samples [first, first + count) of the global data.
template <class T>
inline Run<T> run_steps(const Case& c, const GlobalData<T>& data, index_t first, index_t count, const Execution& execution) {
  const index_t per = product(c.sample_shape);
  const Shape shape = with_batch(count, c.sample_shape);
  const auto n = static_cast<std::size_t>(count * per);
  const auto begin = static_cast<std::size_t>(first * per);
  // At least one element: a rank with no samples still passes valid pointers.
  std::vector<T> x(std::max<std::size_t>(n, 1)), grad_out(std::max<std::size_t>(n, 1));
  std::copy(data.x.begin() + static_cast<std::ptrdiff_t>(begin), data.x.begin() + static_cast<std::ptrdiff_t>(begin + n), x.begin());
  std::copy(data.grad_out.begin() + static_cast<std::ptrdiff_t>(begin),
            data.grad_out.begin() + static_cast<std::ptrdiff_t>(begin + n), grad_out.begin());
  const index_t C = c.config.num_running() > 0 ? c.config.num_running() : 1;
  std::vector<T> running(4 * static_cast<std::size_t>(C));
  Run<T> run;
  RunningStats<T> rs{running.data(), running.data() + C, running.data() + 2 * C, running.data() + 3 * C, &run.batches, C};
  reset_running_stats(rs, C);
  SavedContext<T> ctx;
  std::vector<T> out(x.size()), grad_x(x.size());
  run.grad_weight.assign(data.weight.size(), T(0));
  run.grad_bias.assign(data.weight.size(), T(0));

  ForwardArgs<T> fa;
  fa.input = x.data();
  fa.shape = shape;
  fa.output = out.data();
  fa.weight = {data.weight.data(), static_cast<index_t>(data.weight.size())};
  fa.bias = {data.bias.data(), static_cast<index_t>(data.bias.size())};
  fa.running = rs;
  fa.noise = NoiseSource<T>::philox(42, 0);
  fa.memory_format = c.format;
  forward(c.config, Mode::train, fa, ctx, execution);
  run.out1.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  run.lambda1 = ctx.lambda;

  BackwardArgs<T> ba;
  ba.input = x.data();
  ba.shape = shape;
  ba.grad_output = grad_out.data();
  ba.weight = fa.weight;
  ba.grad_input = grad_x.data();
  ba.grad_weight = run.grad_weight.data();
  ba.grad_bias = run.grad_bias.data();
  ba.memory_format = c.format;
  backward(c.config, ba, ctx, execution);
  run.grad_x.assign(grad_x.begin(), grad_x.begin() + static_cast<std::ptrdiff_t>(n));

  fa.noise = NoiseSource<T>::philox(42, 1);
  forward(c.config, Mode::train, fa, ctx, execution);
  run.out2.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  forward(c.config, Mode::eval, fa, ctx, execution);
  run.eval_out.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  run.running = running;
  return run;
}

// Largest |a - b| over the tensor, relative to the largest |b| (at least 1e-30).
template <class T>
inline double relative_error(const T* a, const T* b, std::size_t n) {
  double diff = 0, scale = 1e-30;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

struct Errors {
  double out = 0, grad_x = 0, grad_params = 0, lambda = 0, running = 0, eval = 0;
  bool running_identical_on_ranks = true;
  bool rerun_identical = true;
  double max() const { return std::max({out, grad_x, grad_params, lambda, running, eval}); }
  std::string to_string() const {
    std::ostringstream s;
    s << "out " << out << ", grad_x " << grad_x << ", grad_weight/bias " << grad_params << ", lambda " << lambda
      << ", running " << running << ", eval " << eval;
    return s.str();
  }
};

template <class T>
inline bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// One rank's check of case c: its slice against the single process, parameter
// gradients summed over ranks (through the reducer) against the single process,
// running statistics bit-identical across ranks, and a second run bit-identical.
template <class T>
inline Errors check_rank(const Case& c, const Reducer& reducer, const Execution& base) {
  const int rank = reducer.rank();
  const index_t total = std::accumulate(c.batches.begin(), c.batches.end(), index_t(0));
  index_t first = 0;
  for (int r = 0; r < rank; ++r) first += c.batches[static_cast<std::size_t>(r)];
  const index_t count = c.batches[static_cast<std::size_t>(rank)];
  const GlobalData<T> data = make_data<T>(c, total);
  Execution serial = base;
  serial.reducer = nullptr;
  const Run<T> ref = run_steps<T>(c, data, 0, total, serial);
  Execution dist = base;
  dist.reducer = &reducer;
  const Run<T> mine = run_steps<T>(c, data, first, count, dist);
  const Run<T> again = run_steps<T>(c, data, first, count, dist);

  Errors e;
  const index_t per = product(c.sample_shape);
  const auto begin = static_cast<std::size_t>(first * per), n = static_cast<std::size_t>(count * per);
  e.out = std::max(relative_error(mine.out1.data(), ref.out1.data() + begin, n),
                   relative_error(mine.out2.data(), ref.out2.data() + begin, n));
  e.grad_x = relative_error(mine.grad_x.data(), ref.grad_x.data() + begin, n);
  e.eval = relative_error(mine.eval_out.data(), ref.eval_out.data() + begin, n);
  e.lambda = relative_error(mine.lambda1.data(), ref.lambda1.data(), ref.lambda1.size());
  e.running = relative_error(mine.running.data(), ref.running.data(), ref.running.size());
  if (mine.batches != ref.batches) e.running = INFINITY;
  // grad_weight and grad_bias: this rank's own sums; over ranks they are the single process's.
  std::vector<double> params(mine.grad_weight.size() * 2);
  for (std::size_t i = 0; i < mine.grad_weight.size(); ++i) {
    params[i] = static_cast<double>(mine.grad_weight[i]);
    params[mine.grad_weight.size() + i] = static_cast<double>(mine.grad_bias[i]);
  }
  {
    const double* all = reducer.allgather(params.data(), params.size());
    std::vector<T> summed(params.size(), T(0));
    std::vector<double> sum(params.size(), 0.0);
    for (int r = 0; r < reducer.size(); ++r)
      for (std::size_t i = 0; i < params.size(); ++i) sum[i] += all[static_cast<std::size_t>(r) * params.size() + i];
    for (std::size_t i = 0; i < params.size(); ++i) summed[i] = T(sum[i]);
    std::vector<T> expected(ref.grad_weight);
    expected.insert(expected.end(), ref.grad_bias.begin(), ref.grad_bias.end());
    e.grad_params = relative_error(summed.data(), expected.data(), expected.size());
  }
  // Running statistics: the same bits on every rank.
  {
    std::vector<double> stats(mine.running.begin(), mine.running.end());
    stats.push_back(static_cast<double>(mine.batches));
    const double* all = reducer.allgather(stats.data(), stats.size());
    for (int r = 1; r < reducer.size(); ++r)
      if (std::memcmp(all, all + static_cast<std::size_t>(r) * stats.size(), stats.size() * sizeof(double)) != 0)
        e.running_identical_on_ranks = false;
  }
  e.rerun_identical = same_bits(mine.out1, again.out1) && same_bits(mine.grad_x, again.grad_x) &&
                      same_bits(mine.out2, again.out2) && same_bits(mine.eval_out, again.eval_out) &&
                      same_bits(mine.running, again.running) && same_bits(mine.grad_weight, again.grad_weight) &&
                      same_bits(mine.lambda1, again.lambda1);
  return e;
}

template <class T>
constexpr double tolerance() {
  return sizeof(T) == 8 ? 1e-12 : 1e-5;
}

}  // namespace normnorm::test::distributed
