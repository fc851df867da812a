#pragma once
// Groups that are the columns of row-major memory: the batch forms' on (N, C) input
// and channels-last (N, ..., C) rows, the instance forms' (and one channel per
// group's) on channels-last rows, per sample. The engine walks them where they are, one
// channel per lane (engine/column_forward.hpp, engine/column_backward.hpp),
// instead of on a transposed copy; engine/placement.hpp chooses between the two.

#include <algorithm>

#include "normnorm/layout.hpp"

namespace normnorm::engine {

// Channel c's values: `segments` runs of `rows` values at c + s * segment_stride +
// i * row_stride (run s, row i). (N, C): one run of N rows, C apart. Channels-last
// (N, S..., C): N runs (one per sample) of S rows each, so the values come in the
// order of the contiguous (N, C, S...) group, run by run. Instance forms, channels-last:
// `planes` sets of such columns, one per sample, `plane_stride` apart, each column one
// run; plane p's column c is group p * columns + c (the contiguous layout's order).
struct Columns {
  index_t columns = 0;
  index_t segments = 1, rows = 0, row_stride = 0, segment_stride = 0;
  index_t planes = 1, plane_stride = 0;

  NORMNORM_ALWAYS_INLINE bool active() const { return rows > 0; }
  NORMNORM_ALWAYS_INLINE index_t group_size() const { return segments * rows; }
  NORMNORM_ALWAYS_INLINE index_t groups() const { return planes * columns; }
  // How many blocks of up to `lanes` columns every plane makes (ColumnBlock::numbered).
  NORMNORM_ALWAYS_INLINE index_t blocks_per_plane(index_t lanes) const { return (columns + lanes - 1) / lanes; }
  NORMNORM_ALWAYS_INLINE index_t blocks(index_t lanes) const { return planes * blocks_per_plane(lanes); }
  // The logical (N, C, S...) offset of run `segment` of plane `plane`'s column `column`
  // (channels-last: the Philox key of its first value; placement.hpp).
  NORMNORM_ALWAYS_INLINE index_t logical_start(index_t plane, index_t column, index_t segment) const {
    return ((plane * segments + segment) * columns + column) * rows;
  }
};

// Up to one batch of adjacent columns of one plane: what a kernel walks at once.
struct ColumnBlock {
  index_t plane = 0;
  index_t channel = 0;  // the first column's channel: its affine parameters
  index_t group = 0;    // its group: its entries in the context
  index_t offset = 0;   // its first value in memory
  index_t width = 0;    // how many columns

  static ColumnBlock of(const Columns& columns, index_t plane, index_t first, index_t width) {
    return {plane, first, plane * columns.columns + first, plane * columns.plane_stride + first, width};
  }
  // Block b of the work units "every plane's blocks of up to `lanes` columns", plane by plane.
  static ColumnBlock numbered(const Columns& columns, index_t lanes, index_t b) {
    const index_t per_plane = columns.blocks_per_plane(lanes);
    const index_t plane = b / per_plane, first = b % per_plane * lanes;
    return of(columns, plane, first, std::min(lanes, columns.columns - first));
  }
};

// The widest batch of any target (AVX-512: 64 bytes): what the callers size per-lane
// scratch by, not knowing which target's kernel will run.
template <class T>
inline constexpr index_t max_column_lanes = static_cast<index_t>(64 / sizeof(T));

}  // namespace normnorm::engine
