// Reproducible standard-normal noise keyed by logical element index.
//
// Every draw is a pure function of (seed, call, index): within one build it does
// not depend on thread count, execution path, or how a range is split into calls.
//
// Mapping onto Philox4x32-10 (see philox.hpp):
//   key     = {low32(seed), high32(seed)}
//   block   b = index / 4
//   counter = {low32(b), high32(b), low32(call), high32(call)}
// Each of the block's words w0..w3 becomes a uniform u = ((w >> 9) + 0.5) * 2^-23,
// exact in float and strictly inside (0, 1). Box-Muller, in float, turns each
// pair into two normals, with r = sqrt(-2 log u_first):
//   (w0, w1) -> index 4b+0 = r*cos(2*pi*u1), index 4b+1 = r*sin(2*pi*u1)
//   (w2, w3) -> index 4b+2 = r*cos(2*pi*u3), index 4b+3 = r*sin(2*pi*u3)
// The generator runs Philox across SIMD lanes and Box-Muller with xsimd's float
// log and sincos; a double output is the float draw widened, so float and double
// layers see the same noise. Builds for different instruction sets may differ in
// the last bits (xsimd's polynomials use FMA where the target has it).
// reference_standard_normal() is the same mapping in double, for tests.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "normnorm/noise/philox.hpp"
#include "normnorm/noise/philox_simd.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::noise {

namespace detail {

inline constexpr double kTwoPi = 6.283185307179586476925286766559;
inline constexpr double kTwoToMinus23 = 1.0 / 8388608.0;

constexpr std::uint32_t low32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x); }
constexpr std::uint32_t high32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x >> 32); }

using NoiseArch = xsimd::default_arch;
inline constexpr std::size_t kBlocksPerBatch = Words<NoiseArch>::size;
inline constexpr std::size_t kNormalsPerBatch = 4 * kBlocksPerBatch;

// The normals of blocks [first_block, first_block + kBlocksPerBatch), in index order.
inline void normals_for_blocks(std::uint64_t seed, std::uint64_t call, std::uint64_t first_block,
                               float* out) noexcept {
  using A = NoiseArch;
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  constexpr std::size_t width = kBlocksPerBatch;
  alignas(64) std::uint32_t block_low[width], block_high[width];
  for (std::size_t l = 0; l < width; ++l) {
    block_low[l] = low32(first_block + l);
    block_high[l] = high32(first_block + l);
  }
  Words<A> c0 = Words<A>::load_aligned(block_low), c1 = Words<A>::load_aligned(block_high);
  Words<A> c2(low32(call)), c3(high32(call));
  philox4x32_10_lanes(c0, c1, c2, c3, {low32(seed), high32(seed)});

  const auto uniform = [](const Words<A>& w) {
    return (xsimd::batch_cast<float>(xsimd::bitwise_cast<I>(w >> 9)) + F(0.5f)) * F(float(kTwoToMinus23));
  };
  const F radius01 = xsimd::sqrt(F(-2.0f) * xsimd::log(uniform(c0)));
  const F radius23 = xsimd::sqrt(F(-2.0f) * xsimd::log(uniform(c2)));
  const auto angle1 = xsimd::sincos(F(float(kTwoPi)) * uniform(c1));  // (sin, cos)
  const auto angle3 = xsimd::sincos(F(float(kTwoPi)) * uniform(c3));
  alignas(64) float n0[width], n1[width], n2[width], n3[width];
  (radius01 * angle1.second).store_aligned(n0);
  (radius01 * angle1.first).store_aligned(n1);
  (radius23 * angle3.second).store_aligned(n2);
  (radius23 * angle3.first).store_aligned(n3);
  for (std::size_t l = 0; l < width; ++l) {
    out[4 * l + 0] = n0[l];
    out[4 * l + 1] = n1[l];
    out[4 * l + 2] = n2[l];
    out[4 * l + 3] = n3[l];
  }
}

}  // namespace detail

// Writes standard-normal draws for logical element indices [first_index, first_index + count)
// of training call `call` under `seed`. out[k] is the draw for index first_index + k.
template <class T>  // float or double
void fill_standard_normals(std::uint64_t seed, std::uint64_t call, std::uint64_t first_index,
                           std::size_t count, T* out) noexcept {
  constexpr std::size_t per_batch = detail::kNormalsPerBatch;
  alignas(64) float normals[per_batch];
  // Batches start at multiples of per_batch, so each index always lands in the same lane.
  std::uint64_t batch_start = first_index / per_batch * per_batch;
  std::size_t skip = static_cast<std::size_t>(first_index - batch_start);
  std::size_t written = 0;
  while (written < count) {
    detail::normals_for_blocks(seed, call, batch_start / 4, normals);
    for (std::size_t k = skip; k < per_batch && written < count; ++k) out[written++] = static_cast<T>(normals[k]);
    skip = 0;
    batch_start += per_batch;
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
  const std::uint64_t block = index / 4;
  const PhiloxCounter words =
      philox4x32_10({detail::low32(block), detail::high32(block), detail::low32(call), detail::high32(call)},
                    {detail::low32(seed), detail::high32(seed)});
  const std::size_t lane = static_cast<std::size_t>(index % 4);
  const std::size_t pair = lane & ~std::size_t{1};
  auto uniform = [](std::uint32_t w) { return (static_cast<double>(w >> 9) + 0.5) * detail::kTwoToMinus23; };
  const double radius = std::sqrt(-2.0 * std::log(uniform(words[pair])));
  const double angle = detail::kTwoPi * uniform(words[pair + 1]);
  return lane % 2 == 0 ? radius * std::cos(angle) : radius * std::sin(angle);
}

}  // namespace normnorm::noise

#include "normnorm/detail/end_simd_code.hpp"
