#pragma once
// Where training noise comes from: nowhere, the built-in counter-based
// generator, or standard-normal draws the caller supplies (one per input
// element, in the input's layout) from their own RNG.

#include <cstdint>

#include "normnorm/config.hpp"
#include "normnorm/noise/normal.hpp"

namespace normnorm {

enum class NoiseKind { none, philox, external };

template <class T>
struct NoiseSource {
  NoiseKind kind = NoiseKind::none;
  std::uint64_t seed = 0;   // philox: the user's seed (the key)
  std::uint64_t call = 0;   // philox: which training call (the counter's high half)
  const T* normals = nullptr;  // external: standard-normal draws, input-shaped

  static NoiseSource none() { return {}; }
  static NoiseSource philox(std::uint64_t seed, std::uint64_t call) {
    NoiseSource source;
    source.kind = NoiseKind::philox;
    source.seed = seed;
    source.call = call;
    return source;
  }
  static NoiseSource external(const T* normals) {
    NoiseSource source;
    source.kind = NoiseKind::external;
    source.normals = normals;
    return source;
  }

  // Draws for flat input offsets [first, first + count): keyed by the offset,
  // so the value never depends on how the work is split. Arch: the instruction
  // set the generator runs with (the engine passes its own).
  template <class Arch = xsimd::default_arch>
  void fill(index_t first, index_t count, T* out) const {
    if (kind == NoiseKind::philox) {
      noise::fill_standard_normals<T, Arch>(seed, call, static_cast<std::uint64_t>(first),
                                      static_cast<std::size_t>(count), out);
    } else if (kind == NoiseKind::external) {
      for (index_t i = 0; i < count; ++i) out[i] = normals[first + i];
    } else {
      for (index_t i = 0; i < count; ++i) out[i] = T(0);
    }
  }
};

}  // namespace normnorm
