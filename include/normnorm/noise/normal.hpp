// Reproducible standard-normal noise keyed by logical element index.
//
// Every draw is a pure function of (seed, call, index): within one build it does
// not depend on thread count, execution path, SIMD width, or how a range is
// split into calls.
//
// Mapping onto Philox4x32-10 (see philox.hpp). Indices come in tiles of 64:
//   tile    t = index / 64,  k = index % 64,  stream j = k / 16,  lane l = k % 16
//   block   b = 16 t + l
//   key     = {low32(seed), high32(seed)}
//   counter = {low32(b), high32(b), low32(call), high32(call)}
// Each of the block's words w0..w3 becomes a uniform u = ((w >> 9) + 0.5) * 2^-23,
// exact in float and strictly inside (0, 1). Box-Muller, in float, with
// r01 = sqrt(-2 log u0) and r23 = sqrt(-2 log u2):
//   stream 0 = r01 cos(2 pi u1), stream 1 = r01 sin(2 pi u1),
//   stream 2 = r23 cos(2 pi u3), stream 3 = r23 sin(2 pi u3).
// So a tile is four contiguous runs of 16 draws, one per stream: SIMD lanes write
// them straight out, with no interleaving. The lane count of the tile (16) is
// fixed, not the machine's SIMD width, so every build draws the same mapping.
// The generator runs Philox across SIMD lanes and Box-Muller with xsimd's float
// log and a sincos specialised to 2 pi u (sincos_two_pi); a double output is the float draw widened, so float and double
// layers see the same noise. Builds for different instruction sets may differ in
// the last bits (xsimd's polynomials use FMA where the target has it).
// reference_standard_normal() is the same mapping in double, for tests.
#pragma once

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/noise/philox.hpp"
#include "normnorm/noise/philox_simd.hpp"

#include "normnorm/detail/begin_simd_code.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::noise {
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace detail {

inline constexpr double kTwoPi = 6.283185307179586476925286766559;
inline constexpr double kTwoToMinus23 = 1.0 / 8388608.0;

constexpr std::uint32_t low32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x); }
constexpr std::uint32_t high32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x >> 32); }

inline constexpr std::size_t kTileLanes = 16;                  // blocks per tile
inline constexpr std::size_t kNormalsPerTile = 4 * kTileLanes;  // 64 draws

// (sin, cos) of 2 pi u for u in (0, 1), without a general range reduction: the
// quadrant q = round(4 u) is exact, f = u - q / 4 in [-1/8, 1/8] is exact, and
// x = 2 pi f in [-pi/4, pi/4] takes the Taylor polynomials of sin (to x^9) and cos (to
// x^10), truncation below 3e-9; then the quadrant rotates (sin, cos). About half the work
// of xsimd::sincos, which reduces any float argument.
template <class F>
inline std::pair<F, F> sincos_two_pi(const F& u) noexcept {
  const F q = xsimd::nearbyint(u * F(4.0f));
  const F x = (u - q * F(0.25f)) * F(float(kTwoPi));
  const F x2 = x * x;
  F sin_poly = F(float(1.0 / 362880.0));
  sin_poly = xsimd::fma(sin_poly, x2, F(float(-1.0 / 5040.0)));
  sin_poly = xsimd::fma(sin_poly, x2, F(float(1.0 / 120.0)));
  sin_poly = xsimd::fma(sin_poly, x2, F(float(-1.0 / 6.0)));
  const F sin_x = xsimd::fma(sin_poly * x2, x, x);
  F cos_poly = F(float(-1.0 / 3628800.0));
  cos_poly = xsimd::fma(cos_poly, x2, F(float(1.0 / 40320.0)));
  cos_poly = xsimd::fma(cos_poly, x2, F(float(-1.0 / 720.0)));
  cos_poly = xsimd::fma(cos_poly, x2, F(float(1.0 / 24.0)));
  cos_poly = xsimd::fma(cos_poly, x2, F(-0.5f));
  const F cos_x = xsimd::fma(cos_poly, x2, F(1.0f));
  const F quadrant = xsimd::select(q == F(4.0f), F(0.0f), q);  // 0, 1, 2, 3 (q = 4 is a full turn)
  const auto swap = (quadrant == F(1.0f)) || (quadrant == F(3.0f));
  const auto sin_negative = quadrant >= F(2.0f);
  const auto cos_negative = (quadrant == F(1.0f)) || (quadrant == F(2.0f));
  const F sin_abs = xsimd::select(swap, cos_x, sin_x), cos_abs = xsimd::select(swap, sin_x, cos_x);
  return {xsimd::select(sin_negative, F(0.0f) - sin_abs, sin_abs), xsimd::select(cos_negative, F(0.0f) - cos_abs, cos_abs)};
}

// The 64 draws of tile `tile`, in index order, computed with instruction set A
// (the tile is fixed, so every A gives the same draws up to FMA rounding).
template <class A>
inline void normals_for_tile(std::uint64_t seed, std::uint64_t call, std::uint64_t tile, float* out) noexcept {
  static_assert(kTileLanes % Words<A>::size == 0, "the SIMD width must divide the tile");
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  constexpr std::size_t width = Words<A>::size;
  const std::uint64_t first_block = tile * kTileLanes;
  const auto uniform = [](const Words<A>& w) {
    return (xsimd::batch_cast<float>(xsimd::bitwise_cast<I>(w >> 9)) + F(0.5f)) * F(float(kTwoToMinus23));
  };
  alignas(64) static constexpr std::uint32_t lane_index[kTileLanes] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  // The counter words of blocks first_block + lane + [0, width). Block numbers in
  // two 32-bit halves, built in registers (a scalar fill followed by a vector load
  // would stall on store forwarding).
  const auto counters = [&](std::size_t lane, Words<A> (&c)[4]) {
    const std::uint64_t base = first_block + lane;
    const Words<A> base_low(low32(base));
    c[0] = base_low + Words<A>::load_aligned(lane_index);
    c[1] = xsimd::select(c[0] < base_low, Words<A>(high32(base) + 1u), Words<A>(high32(base)));
    c[2] = Words<A>(low32(call));
    c[3] = Words<A>(high32(call));
  };
  // Box-Muller on the blocks' four words: draw k of a block goes to out[k * kTileLanes + lane].
  const auto store_normals = [&](std::size_t lane, const Words<A> (&c)[4]) {
    const F radius01 = xsimd::sqrt(F(-2.0f) * xsimd::log(uniform(c[0])));
    const F radius23 = xsimd::sqrt(F(-2.0f) * xsimd::log(uniform(c[2])));
    const auto angle1 = sincos_two_pi(uniform(c[1]));  // (sin, cos)
    const auto angle3 = sincos_two_pi(uniform(c[3]));
    (radius01 * angle1.second).store_unaligned(out + 0 * kTileLanes + lane);
    (radius01 * angle1.first).store_unaligned(out + 1 * kTileLanes + lane);
    (radius23 * angle3.second).store_unaligned(out + 2 * kTileLanes + lane);
    (radius23 * angle3.first).store_unaligned(out + 3 * kTileLanes + lane);
  };
  std::size_t lane = 0;
  // Two batches of blocks at a time where the tile holds them (AVX2, SSE2): the
  // same draws, 11% fewer ns per draw on an AVX2 core (docs/benchmarks.md).
  for (; lane + 2 * width <= kTileLanes; lane += 2 * width) {
    Words<A> a[4], b[4];
    counters(lane, a);
    counters(lane + width, b);
    philox4x32_10_lanes_pair(a, b, {low32(seed), high32(seed)});
    store_normals(lane, a);
    store_normals(lane + width, b);
  }
  for (; lane < kTileLanes; lane += width) {
    Words<A> c[4];
    counters(lane, c);
    philox4x32_10_lanes(c[0], c[1], c[2], c[3], {low32(seed), high32(seed)});
    store_normals(lane, c);
  }
}

}  // namespace detail

// Writes standard-normal draws for logical element indices [first_index, first_index + count)
// of training call `call` under `seed`. out[k] is the draw for index first_index + k.
template <class T, class A = xsimd::default_arch>  // T float or double; A the instruction set
void fill_standard_normals(std::uint64_t seed, std::uint64_t call, std::uint64_t first_index,
                           std::size_t count, T* out) noexcept {
  constexpr std::size_t per_tile = detail::kNormalsPerTile;
  std::uint64_t tile = first_index / per_tile;
  std::size_t skip = static_cast<std::size_t>(first_index % per_tile);
  std::size_t written = 0;
  alignas(64) float normals[per_tile];
  while (written < count) {
    const std::size_t take = std::min(per_tile - skip, count - written);
    if constexpr (std::is_same_v<T, float>) {
      if (skip == 0 && take == per_tile) {  // a whole tile: straight into the output
        detail::normals_for_tile<A>(seed, call, tile, out + written);
        written += per_tile;
        ++tile;
        continue;
      }
    }
    detail::normals_for_tile<A>(seed, call, tile, normals);
    for (std::size_t k = 0; k < take; ++k) out[written + k] = static_cast<T>(normals[skip + k]);
    written += take;
    skip = 0;
    ++tile;
  }
}

// The single draw for one index (same value fill_standard_normals gives for it).
inline double standard_normal(std::uint64_t seed, std::uint64_t call, std::uint64_t index) noexcept {
  float value = 0;
  fill_standard_normals<float>(seed, call, index, 1, &value);
  return value;
}

// The mapping above evaluated in double with the C library: what the fast
// generator approximates (tests compare the two).
inline double reference_standard_normal(std::uint64_t seed, std::uint64_t call, std::uint64_t index) noexcept {
  const std::uint64_t tile = index / detail::kNormalsPerTile;
  const std::size_t k = static_cast<std::size_t>(index % detail::kNormalsPerTile);
  const std::size_t stream = k / detail::kTileLanes, lane = k % detail::kTileLanes;
  const std::uint64_t block = tile * detail::kTileLanes + lane;
  const PhiloxCounter words =
      philox4x32_10({detail::low32(block), detail::high32(block), detail::low32(call), detail::high32(call)},
                    {detail::low32(seed), detail::high32(seed)});
  const std::size_t pair = stream < 2 ? 0 : 2;
  auto uniform = [](std::uint32_t w) { return (static_cast<double>(w >> 9) + 0.5) * detail::kTwoToMinus23; };
  const double radius = std::sqrt(-2.0 * std::log(uniform(words[pair])));
  const double angle = detail::kTwoPi * uniform(words[pair + 1]);
  return stream % 2 == 0 ? radius * std::cos(angle) : radius * std::sin(angle);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::noise

#include "normnorm/detail/end_simd_code.hpp"
