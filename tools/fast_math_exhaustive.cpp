// Exhaustive float accuracy of math::log1p_nonneg (every a >= 0) and math::expm1_fast
// (every t in [-17.33, 88.72]; beyond, saturation is tested in tests/test_fast_math.cpp),
// in ulp of the exact (long double) result, at the build's instruction set. About 2.5
// minutes on 2 cores with -march=native:
//   g++ -std=c++17 -O2 -march=native -Iinclude tools/fast_math_exhaustive.cpp -pthread
// (drop -march=native for the SSE2 build without FMA).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>
#include "normnorm/math/fast_math.hpp"
using B = xsimd::batch<float>;
static long double ulp_of(long double exact) {
  long double m = std::fabs(exact);
  if (m < std::numeric_limits<float>::min()) return std::numeric_limits<float>::denorm_min();
  int e; std::frexp(m, &e);
  return std::ldexp(1.0L, e - 24);
}
struct R { double worst = 0, sum = 0; float at = 0; long n = 0; };
static void run(bool expm1, std::uint32_t lo, std::uint32_t hi, bool negative, R& r) {
  alignas(64) float in[B::size], out[B::size];
  std::uint32_t bits = lo;
  while (bits < hi) {
    for (std::size_t i = 0; i < B::size; ++i) {
      std::uint32_t b = bits + std::uint32_t(i) < hi ? bits + std::uint32_t(i) : hi - 1;
      if (negative) b |= 0x80000000u;
      std::memcpy(&in[i], &b, 4);
    }
    B x = B::load_aligned(in);
    B y = expm1 ? normnorm::math::expm1_fast(x) : normnorm::math::log1p_nonneg(x);
    y.store_aligned(out);
    for (std::size_t i = 0; i < B::size && bits + i < hi; ++i) {
      long double exact = expm1 ? std::expm1((long double)in[i]) : std::log1p((long double)in[i]);
      if (std::fabs(exact) > std::numeric_limits<float>::max()) continue;
      if (exact == 0) { if (out[i] != 0) r.worst = 1e9; continue; }
      double err = (double)(std::fabs((long double)out[i] - exact) / ulp_of(exact));
      r.sum += err; ++r.n;
      if (err > r.worst) { r.worst = err; r.at = in[i]; }
    }
    bits += B::size;
  }
}
int main() {
  // log1p: all nonnegative finite floats; expm1: t in [-17.33, 88.72] (outside, saturation is tested elsewhere).
  auto bits_of = [](float f) { std::uint32_t b; std::memcpy(&b, &f, 4); return b; };
  const std::uint32_t inf = 0x7f800000u;
  R a, b, c, d;
  std::thread t1([&] { run(false, 0, inf / 2, false, a); });
  run(false, inf / 2, inf, false, b);
  t1.join();
  std::thread t2([&] { run(true, 0, bits_of(88.72f), false, c); });
  run(true, 0, bits_of(17.33f), true, d);
  t2.join();
  R l{std::max(a.worst, b.worst), a.sum + b.sum, a.worst > b.worst ? a.at : b.at, a.n + b.n};
  std::printf("log1p_nonneg float: worst %.3f ulp at %.9g, mean %.4f ulp over %ld\n", l.worst, l.at, l.sum / l.n, l.n);
  std::printf("expm1_fast float t>=0: worst %.3f ulp at %.9g, mean %.4f\n", c.worst, c.at, c.sum / c.n);
  std::printf("expm1_fast float t<0: worst %.3f ulp at %.9g, mean %.4f\n", d.worst, d.at, d.sum / d.n);
}
