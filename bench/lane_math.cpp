// lane_math: what the kernels' per-element work costs on its own, in ns per element,
// with the library's own lane functions at the build's instruction set
// (xsimd::default_arch: what -march=native gives; normnorm_bench_dispatch, built without
// -m flags, runs these rows on baseline SSE2, not dispatched). The per-element ceiling of
// docs/benchmarks.md ("The per-element ceiling on this machine") is computed from
// these rows. Names:
//
//   lane_math/<function>[/<input>]/<dtype>/<n>
//
//   copy, sum, load2_store   the memory floor: load+store, load+sum (4 accumulators),
//                            two loads and a store; at group sizes and, for the floor of
//                            a whole call, at the element counts of normnorm_bench's shapes
//   log1p_nonneg             math::log1p_nonneg on |h| (input abs_normal or exponential)
//   expm1_fast               math::expm1_fast on t = eta log1p(|h|), eta uniform in [0.5, 1.5]
//   exp                      math::exp (xsimd::exp, clamped), the backward's exp, on the same t
//   reciprocal               1 / (1 + |h|), the backward's division
//   xsimd_log1p, xsimd_expm1 xsimd's own, for reference
//   normal_draws             noise::fill_standard_normals (Philox4x32-10 + Box-Muller), per draw
//   power_transform          math::power_transform (log1p, expm1, a multiply): load h, store y
//   min_backward             log1p, 1 / (1 + a) and expm1 fused: the backward's unavoidable work
//   lambda_terms             math::lambda_terms: load h, the five terms summed into a store
//   pass1_math               math::magnitude_of + power_transform_derivatives + lambda_sensitivity
//   pass_*                   the kernels' passes as engine/*.hpp write them (standardize,
//                            LaneSums folded into double every reduction_block, stores):
//                            pass_sum, pass_deviations, pass_lambda_sums, pass_transform,
//                            pass_spread, pass_affine_noise, pass_backward1, pass_backward2;
//                            pass_backward1_outlined: pass 1 with its per-element lambda
//                            out of line, as g++ 12 compiles the library's here
//
// One iteration is one pass over n elements; items_per_second counts elements and the
// counter per_element is CPU time per element (e.g. 707ps; seconds in JSON). Inputs are
// 64-byte aligned and filled before timing; every output is stored or summed into a value
// passed to benchmark::DoNotOptimize, and memory is clobbered after each pass, so nothing is
// hoisted out of the timing loop. The functions are force-inlined xsimd batch code, so the
// compiler has nothing left to vectorize.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include <normnorm/normnorm.hpp>
#include <normnorm/engine/standardize.hpp>
#include <normnorm/math/fast_math.hpp>
#include <normnorm/math/lanes.hpp>
#include <normnorm/math/yeo_johnson.hpp>
#include <normnorm/noise/normal.hpp>

#include <benchmark/benchmark.h>

// The per-element lambdas are force-inlined (GCC and Clang): measured as the kernels
// are meant to run them, inlined into their loop. g++ makes its own choice per
// translation unit otherwise (it left some of these lambdas out of line here, which
// costs a call per batch); pass_backward1_outlined keeps one out of line on purpose.
#if defined(__GNUC__) || defined(__clang__)
#define LANE_MATH_INLINE __attribute__((always_inline))
#define LANE_MATH_NOINLINE __attribute__((noinline))
#else
#define LANE_MATH_INLINE
#define LANE_MATH_NOINLINE
#endif

namespace {

namespace nm = normnorm::math;
using normnorm::index_t;
using Arch = xsimd::default_arch;

template <class T>
class Aligned {
 public:
  explicit Aligned(index_t n) : size_(n) {
    const std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (!data_) throw std::bad_alloc();
    std::fill(data_, data_ + n, T(0));
  }
  ~Aligned() { std::free(data_); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](index_t i) { return data_[i]; }
  index_t size() const { return size_; }

 private:
  T* data_;
  index_t size_;
};

// Inputs, drawn once per benchmark before timing (std::mt19937, fixed seeds).
enum class Input { normal, abs_normal, exponential, exponent };

template <class T>
void fill(Aligned<T>& out, Input input, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::exponential_distribution<double> exponential(1.0);
  std::uniform_real_distribution<double> eta(0.5, 1.5);
  for (index_t i = 0; i < out.size(); ++i) {
    switch (input) {
      case Input::normal: out[i] = T(normal(rng)); break;
      case Input::abs_normal: out[i] = T(std::abs(normal(rng))); break;
      case Input::exponential: out[i] = T(exponential(rng)); break;
      // t = eta log1p(|h|): the exponents the transform and the backward's exp see.
      case Input::exponent: out[i] = T(eta(rng) * std::log1p(std::abs(normal(rng)))); break;
    }
  }
}

template <class T>
void finish(benchmark::State& state, index_t n) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * n);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * n * static_cast<std::int64_t>(sizeof(T)));
  // Seconds per element: printed with an SI prefix (e.g. 707ps), in seconds in JSON.
  state.counters["per_element"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// out[i] = f(in[i]) over n elements, one batch at a time (n is a multiple of the width).
template <class T, class F>
void map_rows(benchmark::State& state, Input input, F f) {
  using B = xsimd::batch<T, Arch>;
  constexpr index_t w = static_cast<index_t>(B::size);
  const index_t n = state.range(0);
  Aligned<T> in(n), out(n);
  fill(in, input, 1);
  T* src = in.data();
  T* dst = out.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    benchmark::DoNotOptimize(dst);
    for (index_t i = 0; i < n; i += w) f(B::load_aligned(src + i)).store_aligned(dst + i);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// The same with two outputs: f(h) returns a pair of batches, stored to two arrays.
template <class T, class F>
void map_rows_to_two(benchmark::State& state, F f) {
  using B = xsimd::batch<T, Arch>;
  constexpr index_t w = static_cast<index_t>(B::size);
  const index_t n = state.range(0);
  Aligned<T> in(n), out1(n), out2(n);
  fill(in, Input::normal, 1);
  const T* src = in.data();
  T* d1 = out1.data();
  T* d2 = out2.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    benchmark::DoNotOptimize(d1);
    benchmark::DoNotOptimize(d2);
    for (index_t i = 0; i < n; i += w) {
      const std::pair<B, B> two = f(B::load_aligned(src + i));
      two.first.store_aligned(d1 + i);
      two.second.store_aligned(d2 + i);
    }
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// ---------------------------------------------------------------------------
// The memory floor.
// ---------------------------------------------------------------------------
template <class T>
void copy_rows(benchmark::State& state) {
  map_rows<T>(state, Input::normal, [](const auto& v) LANE_MATH_INLINE { return v; });
}

template <class T>
void sum_rows(benchmark::State& state) {
  using B = xsimd::batch<T, Arch>;
  constexpr index_t w = static_cast<index_t>(B::size);
  const index_t n = state.range(0);
  Aligned<T> in(n);
  fill(in, Input::normal, 1);
  const T* src = in.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    B s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));  // four chains: bound by loads, not by add latency
    index_t i = 0;
    for (; i + 4 * w <= n; i += 4 * w) {
      s0 += B::load_aligned(src + i);
      s1 += B::load_aligned(src + i + w);
      s2 += B::load_aligned(src + i + 2 * w);
      s3 += B::load_aligned(src + i + 3 * w);
    }
    for (; i < n; i += w) s0 += B::load_aligned(src + i);
    T total = xsimd::hadd((s0 + s1) + (s2 + s3));
    benchmark::DoNotOptimize(total);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// out = a + b: the backward's traffic (x and grad_out read, grad_x written).
template <class T>
void load2_store_rows(benchmark::State& state) {
  using B = xsimd::batch<T, Arch>;
  constexpr index_t w = static_cast<index_t>(B::size);
  const index_t n = state.range(0);
  Aligned<T> a(n), b(n), out(n);
  fill(a, Input::normal, 1);
  fill(b, Input::normal, 2);
  const T* pa = a.data();
  const T* pb = b.data();
  T* dst = out.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(pa);
    benchmark::DoNotOptimize(pb);
    benchmark::DoNotOptimize(dst);
    for (index_t i = 0; i < n; i += w) (B::load_aligned(pa + i) + B::load_aligned(pb + i)).store_aligned(dst + i);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// ---------------------------------------------------------------------------
// Single lane functions.
// ---------------------------------------------------------------------------
template <class T>
void log1p_rows(benchmark::State& state, Input input) {
  map_rows<T>(state, input, [](const auto& a) LANE_MATH_INLINE { return nm::log1p_nonneg(a); });
}
template <class T>
void expm1_rows(benchmark::State& state) {
  map_rows<T>(state, Input::exponent, [](const auto& t) LANE_MATH_INLINE { return nm::expm1_fast(t); });
}
template <class T>
void exp_rows(benchmark::State& state) {
  map_rows<T>(state, Input::exponent, [](const auto& t) LANE_MATH_INLINE { return nm::exp(t); });
}
template <class T>
void reciprocal_rows(benchmark::State& state) {
  using B = xsimd::batch<T, Arch>;
  map_rows<T>(state, Input::abs_normal, [](const B& a) LANE_MATH_INLINE { return B(T(1)) / (B(T(1)) + a); });
}
template <class T>
void xsimd_log1p_rows(benchmark::State& state) {
  map_rows<T>(state, Input::abs_normal, [](const auto& a) LANE_MATH_INLINE { return xsimd::log1p(a); });
}
template <class T>
void xsimd_expm1_rows(benchmark::State& state) {
  map_rows<T>(state, Input::exponent, [](const auto& t) LANE_MATH_INLINE { return xsimd::expm1(t); });
}

template <class T>
void normal_draw_rows(benchmark::State& state) {
  const index_t n = state.range(0);
  Aligned<T> out(n);
  T* dst = out.data();
  std::uint64_t call = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dst);
    normnorm::noise::fill_standard_normals<T, Arch>(0x5eedULL, call++, 0, static_cast<std::size_t>(n), dst);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// A group's transform and lambda sensitivity, opaque to the compiler (in the kernels
// they come from the context at run time). lambda 0.8: exponents 0.8 and 1.2.
// opaque(v): a copy of v that the compiler cannot constant-fold, and whose address has
// not escaped (so stores to the outputs cannot alias it, as in the kernels, where these
// values are locals computed at run time).
template <class X>
X opaque(X v) {
  benchmark::DoNotOptimize(v);
  return v;
}
template <class T>
nm::PowerTransform<T> opaque_transform() {
  return opaque(nm::PowerTransform<T>::make(0.8, std::sqrt(1e-5), true));
}
template <class T>
nm::LambdaSensitivity<T> opaque_sensitivity() {
  nm::LambdaSensitivity<T> k;
  k.k_g1 = T(-0.45);
  k.k_g2 = T(0.12);
  k.A = T(0.21);
  k.D = T(0.33);
  return opaque(k);
}
template <class T>
normnorm::engine::Standardizer<T> opaque_standardizer(const Aligned<T>& x) {
  double sum = 0, sum2 = 0;
  for (index_t i = 0; i < x.size(); ++i) sum += static_cast<double>(x.data()[i]);
  const double mean = sum / static_cast<double>(x.size());
  for (index_t i = 0; i < x.size(); ++i) sum2 += (x.data()[i] - mean) * (x.data()[i] - mean);
  return opaque(normnorm::engine::Standardizer<T>::from(mean, 1.0 / std::sqrt(sum2 / static_cast<double>(x.size()) + 1e-5)));
}

// ---------------------------------------------------------------------------
// Composite lane functions, load h -> store.
// ---------------------------------------------------------------------------
template <class T>
void power_transform_rows(benchmark::State& state) {
  const auto pt = opaque_transform<T>();
  map_rows<T>(state, Input::normal, [pt](const auto& h) LANE_MATH_INLINE { return nm::power_transform(h, pt); });
}

// The backward's unavoidable transcendental work, fused: L = log1p(a), 1 / (1 + a),
// E = expm1(et L); psi_h = (E + 1) / (1 + a) and y = E / et stored.
template <class T>
void min_backward_rows(benchmark::State& state) {
  using B = xsimd::batch<T, Arch>;
  const auto pt = opaque_transform<T>();
  map_rows_to_two<T>(state, [pt](const B& h) LANE_MATH_INLINE {
    const auto nonneg = h >= B(T(0));
    const B a = xsimd::abs(h);
    const B L = nm::log1p_nonneg(a);
    const B r = B(T(1)) / (B(T(1)) + a);
    const B et = xsimd::select(nonneg, B(pt.nonneg.exponent), B(pt.neg.exponent));
    const B inv_et = xsimd::select(nonneg, B(pt.nonneg.inv_exponent), B(pt.neg.inv_exponent));
    const B E = nm::expm1_fast(et * L);
    return std::pair<B, B>(xsimd::fma(E, r, r), E * inv_et);
  });
}

template <class T>
void lambda_terms_rows(benchmark::State& state) {
  map_rows<T>(state, Input::normal, [](const auto& h) LANE_MATH_INLINE {
    using V = std::decay_t<decltype(h)>;
    const auto t = nm::lambda_terms<V, T>(h);
    return ((t.hd + t.sL) + (t.d + t.dd)) + t.he;
  });
}

// magnitude_of + power_transform_derivatives + lambda_sensitivity: the backward's per-element math.
template <class T>
void pass1_math_rows(benchmark::State& state) {
  using B = xsimd::batch<T, Arch>;
  const auto pt = opaque_transform<T>();
  const auto k = opaque_sensitivity<T>();
  map_rows_to_two<T>(state, [pt, k](const B& h) LANE_MATH_INLINE {
    const auto m = nm::magnitude_of(h);
    const auto td = nm::power_transform_derivatives(m, pt);
    const B dl = nm::lambda_sensitivity(m, k);
    return std::pair<B, B>(td.y + td.psi_h, td.psi_l + dl);
  });
}

// ---------------------------------------------------------------------------
// The kernels' passes, written as engine/statistics.hpp, forward.hpp and backward.hpp
// write them for one contiguous segment (reduce_group: blocks of reduction_block,
// LaneSums folded into double; for_each_lane with the scalar tail).
// ---------------------------------------------------------------------------
template <class T, int K, class Kernel>
std::array<double, K> reduce(index_t n, Kernel&& kernel) {
  std::array<double, K> totals{};
  nm::LaneSums<T, Arch, K> sums;
  for (index_t start = 0; start < n; start += nm::reduction_block) {
    const index_t m = std::min(nm::reduction_block, n - start);
    sums.reset();
    nm::for_each_lane<T, Arch>(m, [&](auto zero, index_t i) LANE_MATH_INLINE { kernel(zero, start + i, sums); });
    for (int j = 0; j < K; ++j) totals[static_cast<std::size_t>(j)] += sums.total(j);
  }
  return totals;
}

template <class T>
void pass_sum_rows(benchmark::State& state) {  // statistics.hpp: sum of x
  const index_t n = state.range(0);
  Aligned<T> x(n);
  fill(x, Input::normal, 1);
  const T* px = x.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    auto s = reduce<T, 1>(n, [&](auto zero, index_t p, auto& sums) LANE_MATH_INLINE { sums.add(0, nm::load<decltype(zero)>(px + p)); });
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_deviations_rows(benchmark::State& state) {  // statistics.hpp: sum (x - m)^2, sum (x - m)
  const index_t n = state.range(0);
  Aligned<T> x(n);
  fill(x, Input::normal, 1);
  const T* px = x.data();
  const T centre = opaque(T(0.01));
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    auto s = reduce<T, 2>(n, [&](auto zero, index_t p, auto& sums) LANE_MATH_INLINE {
      using V = decltype(zero);
      const V c = nm::load<V>(px + p) - V(centre);
      sums.add(0, c * c);
      sums.add(1, c);
    });
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_lambda_sums_rows(benchmark::State& state) {  // statistics.hpp: the one-step lambda's five sums
  const index_t n = state.range(0);
  Aligned<T> x(n);
  fill(x, Input::normal, 1);
  const auto standardize = opaque_standardizer(x);
  const T* px = x.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    using Wide = nm::lane_batch<T, Arch>;
    Wide wide_max_h(T(0)), wide_max_minus_h(T(0));
    T tail_max_h(0), tail_max_minus_h(0);
    auto tracked = [&](auto value) LANE_MATH_INLINE {
      using V = decltype(value);
      const V h = standardize(value);
      if constexpr (std::is_same_v<V, T>) {
        tail_max_h = std::max(tail_max_h, h);
        tail_max_minus_h = std::max(tail_max_minus_h, -h);
      } else {
        wide_max_h = xsimd::max(wide_max_h, h);
        wide_max_minus_h = xsimd::max(wide_max_minus_h, -h);
      }
      return h;
    };
    auto s = reduce<T, 5>(n, [&](auto zero, index_t p, auto& acc) LANE_MATH_INLINE {
      using V = decltype(zero);
      const auto terms = nm::lambda_terms<V, T>(tracked(nm::load<V>(px + p)));
      acc.add(0, terms.hd);
      acc.add(1, terms.sL);
      acc.add(2, terms.d);
      acc.add(3, terms.dd);
      acc.add(4, terms.he);
    });
    T extremes = std::max(nm::lane_max(wide_max_h), tail_max_h) + std::max(nm::lane_max(wide_max_minus_h), tail_max_minus_h);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(extremes);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_transform_rows(benchmark::State& state) {  // forward.hpp: y = transform(h) stored, sum of y
  const index_t n = state.range(0);
  Aligned<T> x(n), out(n);
  fill(x, Input::normal, 1);
  const auto standardize = opaque_standardizer(x);
  const auto pt = opaque_transform<T>();
  const T* px = x.data();
  T* po = out.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    benchmark::DoNotOptimize(po);
    auto s = reduce<T, 1>(n, [&](auto zero, index_t p, auto& sums) LANE_MATH_INLINE {
      using V = decltype(zero);
      const V y = nm::power_transform(standardize(nm::load<V>(px + p)), pt);
      nm::store(po + p, y);
      sums.add(0, y);
    });
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_spread_rows(benchmark::State& state) {  // forward.hpp: sum |y - mean(y)|
  const index_t n = state.range(0);
  Aligned<T> y(n);
  fill(y, Input::normal, 1);
  const T* py = y.data();
  const T mean_y = opaque(T(0.02));
  for (auto _ : state) {
    benchmark::DoNotOptimize(py);
    auto s = reduce<T, 1>(n, [&](auto zero, index_t p, auto& sums) LANE_MATH_INLINE {
      using V = decltype(zero);
      sums.add(0, nm::abs(nm::load<V>(py + p) - V(mean_y)));
    });
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_affine_noise_rows(benchmark::State& state) {  // forward.hpp write_affine<SourceIsY>: out = gamma (y + sigma n) + beta, in place
  const index_t n = state.range(0);
  Aligned<T> out(n), normals(n);
  fill(out, Input::normal, 1);
  fill(normals, Input::normal, 2);
  const T sigma = opaque(T(0.3)), gamma = opaque(T(1)), beta = opaque(T(0));
  T* po = out.data();
  const T* pn = normals.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(po);
    benchmark::DoNotOptimize(pn);
    nm::for_each_lane<T, Arch>(n, [&](auto zero, index_t i) LANE_MATH_INLINE {
      using V = decltype(zero);
      V z = nm::load<V>(po + i);
      z = z + V(sigma) * nm::load<V>(pn + i);
      nm::store(po + i, V(gamma) * z + V(beta));
    });
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// backward.hpp pass 1 on a channel run (batch and group forms: one affine parameter
// per run), with kept noise read from a buffer and the per-thread partials stored.
// Outlined: the per-element lambda is a function called once per batch, as g++ 12
// compiles the library's own pass-1 lambda in normnorm_bench.cpp (AVX2 build: `nm -C` on
// its object lists backward_pass<float, fma3<avx2>, 1>'s lambda as a local function).
template <class T, bool Outlined>
void pass_backward1_rows(benchmark::State& state) {
  const index_t n = state.range(0);
  Aligned<T> x(n), grad(n), normals(n), partial_psi(n), partial_dl(n);
  fill(x, Input::normal, 1);
  fill(grad, Input::normal, 2);
  fill(normals, Input::normal, 3);
  const auto standardize = opaque_standardizer(x);
  const auto pt = opaque_transform<T>();
  const auto k = opaque_sensitivity<T>();
  const T sigma = opaque(T(0.3)), weight = opaque(T(1));
  const T *px = x.data(), *pg = grad.data(), *pn = normals.data();
  T *pp = partial_psi.data(), *pd = partial_dl.data();
  constexpr index_t chunk = 256;
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    benchmark::DoNotOptimize(pp);
    benchmark::DoNotOptimize(pd);
    double totals[5] = {0, 0, 0, 0, 0};
    double sum_g = 0, sum_gz = 0;
    for (index_t start = 0; start < n; start += chunk) {
      const index_t m = std::min(chunk, n - start);
      nm::LaneSums<T, Arch, 5> sums;
      nm::LaneSums<T, Arch, 2> channel_sums;
      auto element = [&](auto zero, index_t i) LANE_MATH_INLINE {
        using V = decltype(zero);
        const index_t p = start + i;
        const V h = standardize(nm::load<V>(px + p));
        const auto mag = nm::magnitude_of(h);
        const auto td = nm::power_transform_derivatives(mag, pt);
        const V g = nm::load<V>(pg + p);
        const V u = V(weight) * g;
        V z = td.y;
        if (sigma != T(0)) z = z + V(sigma) * nm::load<V>(pn + p);
        const V u_psi_h = u * td.psi_h;
        sums.add(0, u * td.psi_l);
        sums.add(1, u_psi_h);
        sums.add(2, u_psi_h * h);
        nm::store(pp + p, u_psi_h);
        const V dl = nm::lambda_sensitivity(mag, k);
        sums.add(3, dl);
        sums.add(4, dl * h);
        nm::store(pd + p, dl);
        channel_sums.add(0, g);
        channel_sums.add(1, g * z);
      };
      if constexpr (Outlined)
        nm::for_each_lane<T, Arch>(m, [&](auto zero, index_t i) LANE_MATH_NOINLINE { element(zero, i); });
      else
        nm::for_each_lane<T, Arch>(m, element);
      for (int j = 0; j < 5; ++j) totals[j] += sums.total(j);
      sum_g += channel_sums.total(0);
      sum_gz += channel_sums.total(1);
    }
    benchmark::DoNotOptimize(totals);
    benchmark::DoNotOptimize(sum_g);
    benchmark::DoNotOptimize(sum_gz);
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

template <class T>
void pass_backward2_rows(benchmark::State& state) {  // backward.hpp pass 2 from the partials
  const index_t n = state.range(0);
  Aligned<T> x(n), partial_psi(n), partial_dl(n), grad_x(n);
  fill(x, Input::normal, 1);
  fill(partial_psi, Input::normal, 2);
  fill(partial_dl, Input::normal, 3);
  const auto standardize = opaque_standardizer(x);
  const T lambda_term = opaque(T(0.01)), centre = opaque(T(0.02)), slope = opaque(T(0.03));
  const T *px = x.data(), *pp = partial_psi.data(), *pd = partial_dl.data();
  T* pgx = grad_x.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(px);
    benchmark::DoNotOptimize(pgx);
    nm::for_each_lane<T, Arch>(n, [&](auto zero, index_t i) LANE_MATH_INLINE {
      using V = decltype(zero);
      const V h = standardize(nm::load<V>(px + i));
      V gh = nm::load<V>(pp + i);
      gh = gh + V(lambda_term) * nm::load<V>(pd + i);
      nm::store(pgx + i, V(standardize.rstd) * (gh - V(centre) - h * V(slope)));
    });
    benchmark::ClobberMemory();
  }
  finish<T>(state, n);
}

// ---------------------------------------------------------------------------
// Registration.
// ---------------------------------------------------------------------------
template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

// Sizes a group of the benchmarked shapes keeps in L1 (4096) and L2 (65536 floats).
const std::int64_t group_sizes[] = {4096, 65536};
// Element counts of normnorm_bench's shapes: batch_1d 128x784, batch_2d 8x256x14x14,
// group 16x128x28x28, batch_2d 32x64x32x32, instance_2d 16x64x64x64, layer 64x196x384.
const std::int64_t call_sizes[] = {100352, 401408, 1605632, 2097152, 4194304, 4816896};

template <class T, class Fn>
void add(const std::string& name, Fn fn, bool call_sized = false) {
  auto* b = benchmark::RegisterBenchmark(("lane_math/" + name + "/" + dtype_name<T>()).c_str(), fn);
  for (std::int64_t n : group_sizes) b->Arg(n);
  if (call_sized)
    for (std::int64_t n : call_sizes) b->Arg(n);
}

template <class T>
void register_type() {
  add<T>("copy", copy_rows<T>, true);
  add<T>("sum", sum_rows<T>, true);
  add<T>("load2_store", load2_store_rows<T>, true);
  add<T>("log1p_nonneg/abs_normal", [](benchmark::State& s) { log1p_rows<T>(s, Input::abs_normal); });
  add<T>("log1p_nonneg/exponential", [](benchmark::State& s) { log1p_rows<T>(s, Input::exponential); });
  add<T>("expm1_fast", expm1_rows<T>);
  add<T>("exp", exp_rows<T>);
  add<T>("reciprocal", reciprocal_rows<T>);
  add<T>("xsimd_log1p", xsimd_log1p_rows<T>);
  add<T>("xsimd_expm1", xsimd_expm1_rows<T>);
  add<T>("normal_draws", normal_draw_rows<T>);
  add<T>("power_transform", power_transform_rows<T>);
  add<T>("min_backward", min_backward_rows<T>);
  add<T>("lambda_terms", lambda_terms_rows<T>);
  add<T>("pass1_math", pass1_math_rows<T>);
  add<T>("pass_sum", pass_sum_rows<T>);
  add<T>("pass_deviations", pass_deviations_rows<T>);
  add<T>("pass_lambda_sums", pass_lambda_sums_rows<T>);
  add<T>("pass_transform", pass_transform_rows<T>);
  add<T>("pass_spread", pass_spread_rows<T>);
  add<T>("pass_affine_noise", pass_affine_noise_rows<T>);
  add<T>("pass_backward1", pass_backward1_rows<T, false>);
  add<T>("pass_backward1_outlined", pass_backward1_rows<T, true>);
  add<T>("pass_backward2", pass_backward2_rows<T>);
}

// Registered before main() (normnorm_bench.cpp's main runs whatever is registered).
const bool registered = [] {
  register_type<float>();
#ifndef NORMNORM_BENCH_FLOAT_ONLY  // normnorm_bench_float instantiates float only
  register_type<double>();
#endif
  return true;
}();

}  // namespace
