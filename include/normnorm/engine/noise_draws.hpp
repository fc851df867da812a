#pragma once
// The kernels' noise draws, with the kernel's own instruction set. A free
// function in the per-target namespace rather than NoiseSource<T>::fill (a
// member of a type every translation unit shares, so one linker name for all
// targets' copies).

#include "normnorm/detail/target_namespace.hpp"
#include "normnorm/math/lanes.hpp"
#include "normnorm/noise/noise_source.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// Draws for flat input offsets [first, first + count), as NoiseSource<T>::fill
// gives them; the scalar path draws with the translation unit's default architecture.
template <class T, class Arch>
inline void fill_noise(const NoiseSource<T>& source, index_t first, index_t count, T* out) {
  if (source.kind == NoiseKind::philox) {
    noise::fill_standard_normals<T, math::vector_arch<Arch>>(source.seed, source.call, static_cast<std::uint64_t>(first),
                                                             static_cast<std::size_t>(count), out);
  } else if (source.kind == NoiseKind::external) {
    for (index_t i = 0; i < count; ++i) out[i] = source.normals[first + i];
  } else {
    for (index_t i = 0; i < count; ++i) out[i] = T(0);
  }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
