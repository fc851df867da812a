#pragma once
// Batch-form groups that are the columns of row-major memory: (N, C) input and
// channels-last (N, ..., C) rows. The engine walks them where they are, one
// channel per lane (engine/column_forward.hpp, engine/column_backward.hpp),
// instead of on a transposed copy; engine/placement.hpp chooses between the two.

#include "normnorm/layout.hpp"

namespace normnorm::engine {

// Channel c's values: `segments` runs of `rows` values at c + s * segment_stride +
// i * row_stride (run s, row i). (N, C): one run of N rows, C apart. Channels-last
// (N, S..., C): N runs (one per sample) of S rows each, so the values come in the
// order of the contiguous (N, C, S...) group, run by run.
struct Columns {
  index_t columns = 0;
  index_t segments = 1, rows = 0, row_stride = 0, segment_stride = 0;

  NORMNORM_ALWAYS_INLINE bool active() const { return rows > 0; }
  NORMNORM_ALWAYS_INLINE index_t group_size() const { return segments * rows; }
};

// The widest batch of any target (AVX-512: 64 bytes): what the callers size per-lane
// scratch by, not knowing which target's kernel will run.
template <class T>
inline constexpr index_t max_column_lanes = static_cast<index_t>(64 / sizeof(T));

}  // namespace normnorm::engine
