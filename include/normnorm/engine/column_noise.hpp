#pragma once
// The noise of groups that are columns (engine/columns.hpp), as the kernels read it.
// It comes either in the caller's memory order (external draws, the kept buffer,
// Philox keyed by memory offset: placement.hpp draws those beforehand), or, for
// channels-last memory, as Philox keyed by logical (N, C, S...) offset: then each
// block draws its own columns, run by run, into a per-thread buffer, instead of the
// whole tensor being drawn in logical order and transposed. The draws are the
// contiguous group's, value for value (Philox is keyed by offset alone).

#include <algorithm>

#include "normnorm/engine/column_reduction.hpp"
#include "normnorm/engine/noise_draws.hpp"
#include "normnorm/engine/transpose.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// One block's draws: at the element's memory offset, or in a block buffer at
// position * lanes + column (padding lanes zero).
template <class T, class Arch>
struct BlockNoise {
  static constexpr index_t lanes = column_lanes<T, Arch>;
  const T* memory_order = nullptr;
  const T* by_position = nullptr;
  index_t width = 0;

  template <class V>
  NORMNORM_ALWAYS_INLINE V at(index_t offset, index_t position, index_t column) const {
    if (by_position) return math::load<V>(by_position + position * lanes + column);
    return load_lanes<V>(memory_order + offset, width);
  }
};

// Values of each worker thread's block buffer: lanes x group size draws by position,
// and lanes x rows for one run's draws in logical order.
template <class T>
inline index_t block_noise_values(const Columns& columns) {
  return max_column_lanes<T> * (columns.group_size() + columns.rows);
}

// The draws of `block` from `noise` (external: memory order; Philox: keyed by logical
// offset + key_offset, into `buffer`, block_noise_values). In each run the block's
// columns are consecutive in logical order: one draw of width x rows values, then a
// register-blocked transpose to position-major.
template <class T, class Arch>
inline BlockNoise<T, Arch> block_noise(const NoiseSource<T>& noise, index_t key_offset, const Columns& columns,
                                       const ColumnBlock& block, T* buffer) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  BlockNoise<T, Arch> draws;
  draws.width = block.width;
  if (noise.kind != NoiseKind::philox) {
    draws.memory_order = noise.normals;
    return draws;
  }
  const index_t rows = columns.rows, width = block.width;
  T* const drawn = buffer + max_column_lanes<T> * columns.group_size();
  // drawn[column * rows + row] to run[row * lanes + column].
  const Transposition to_positions{1, rows, width, 0, lanes, 0, rows};
  for (index_t segment = 0; segment < columns.segments; ++segment) {
    T* const run = buffer + segment * rows * lanes;
    fill_noise<T, Arch>(noise, key_offset + columns.logical_start(block.plane, block.channel, segment), width * rows,
                        drawn);
    transpose<T, Arch>(to_positions, drawn, run, false, Workers{});
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = width; j < lanes; ++j) run[i * lanes + j] = T(0);  // padding lanes
  }
  draws.by_position = buffer;
  return draws;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
