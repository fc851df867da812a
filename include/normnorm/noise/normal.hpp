// Reproducible standard-normal noise keyed by logical element index.
//
// Every draw is a pure function of (seed, call, index), so results do not
// depend on thread count, SIMD width or how a range is split into calls.
//
// Mapping onto Philox4x32-10 (see philox.hpp):
//   key     = {low32(seed), high32(seed)}
//   block   b = index / 4
//   counter = {low32(b), high32(b), low32(call), high32(call)}
// The block's words w0..w3 become uniforms u = (w + 0.5) * 2^-32, which lie
// strictly inside (0, 1) so log(u) is finite. Box-Muller, in double, turns
// each pair into two normals, with r = sqrt(-2 log u_first):
//   (w0, w1) -> index 4b+0 = r*cos(2*pi*u1), index 4b+1 = r*sin(2*pi*u1)
//   (w2, w3) -> index 4b+2 = r*cos(2*pi*u3), index 4b+3 = r*sin(2*pi*u3)
// Values are cast to the output type last, so float noise is exactly the
// double noise rounded to float.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "normnorm/noise/philox.hpp"

namespace normnorm::noise {

namespace detail {

inline constexpr double kTwoPi = 6.283185307179586476925286766559;
inline constexpr double kTwoToMinus32 = 1.0 / 4294967296.0;

constexpr std::uint32_t low32(std::uint64_t x) noexcept {
  return static_cast<std::uint32_t>(x);
}
constexpr std::uint32_t high32(std::uint64_t x) noexcept {
  return static_cast<std::uint32_t>(x >> 32);
}

// The 4 random words behind logical indices [4*block, 4*block + 4).
inline PhiloxCounter noise_block_words(std::uint64_t seed, std::uint64_t call, std::uint64_t block) noexcept {
  return philox4x32_10({low32(block), high32(block), low32(call), high32(call)}, {low32(seed), high32(seed)});
}

// Midpoint of the word's 2^-32-wide bin: never 0 or 1. Exact in double.
constexpr double open_unit_interval(std::uint32_t word) noexcept {
  return (static_cast<double>(word) + 0.5) * kTwoToMinus32;
}

struct NormalPair {
  double cosine_part;
  double sine_part;
};

// Box-Muller transform of two uniform words into two independent normals.
// Both entry points go through here so they produce bit-identical values.
inline NormalPair box_muller(std::uint32_t radius_word, std::uint32_t angle_word) noexcept {
  const double radius = std::sqrt(-2.0 * std::log(open_unit_interval(radius_word)));
  const double angle = kTwoPi * open_unit_interval(angle_word);
  return {radius * std::cos(angle), radius * std::sin(angle)};
}

inline std::array<double, 4> block_normals(const PhiloxCounter& words) noexcept {
  const NormalPair low = box_muller(words[0], words[1]);
  const NormalPair high = box_muller(words[2], words[3]);
  return {low.cosine_part, low.sine_part, high.cosine_part, high.sine_part};
}

}  // namespace detail

// Writes standard-normal draws for logical element indices [first_index, first_index + count)
// of training call `call` under `seed`. out[k] is the draw for index first_index + k.
template <class T>  // float or double
void fill_standard_normals(std::uint64_t seed, std::uint64_t call, std::uint64_t first_index,
                           std::size_t count, T* out) noexcept {
  std::uint64_t block = first_index / 4;
  // Only the first block can start mid-way; later blocks start at lane 0.
  std::size_t lane = static_cast<std::size_t>(first_index % 4);
  std::size_t written = 0;
  while (written < count) {
    const std::array<double, 4> normals = detail::block_normals(detail::noise_block_words(seed, call, block));
    for (; lane < 4 && written < count; ++lane, ++written) {
      out[written] = static_cast<T>(normals[lane]);
    }
    lane = 0;
    ++block;
  }
}

// The single draw for one index (same value fill_standard_normals gives for it).
inline double standard_normal(std::uint64_t seed, std::uint64_t call, std::uint64_t index) noexcept {
  const PhiloxCounter words = detail::noise_block_words(seed, call, index / 4);
  const std::size_t lane = static_cast<std::size_t>(index % 4);
  const std::size_t pair_start = lane & ~std::size_t{1};
  const detail::NormalPair pair = detail::box_muller(words[pair_start], words[pair_start + 1]);
  return (lane % 2 == 0) ? pair.cosine_part : pair.sine_part;
}

}  // namespace normnorm::noise
