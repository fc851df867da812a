#pragma once
// Walking and summing channels that are columns (engine/columns.hpp): one batch
// holds `width` adjacent channels' values of one row. Every element takes the same
// path (batch or scalar) and every sum the same order as in the contiguous group
// (traversal.hpp), so the results are bit-identical to running on a transposed copy.
//
// For loops (for_each_lane) and sums (reduce_group) the contiguous path runs each
// run of a group in batches and leaves its last rows % W values to scalar code; here
// rows below rows / W * W take the batch path across channels and the rest the
// scalar path channel by channel. reduce_group sums a run in blocks: within a block,
// value i goes to lane i mod W of a batch accumulator, and the block adds hadd(batch)
// + scalar tail in double. Here row i of a block goes to slot i mod W of W slot
// accumulators, so lane j of slot s holds what lane s of channel j's accumulator would;
// at the block's end each channel's W slot values are gathered and summed by the same
// hadd. (Both paths add terms through math::rounded_term, so no compiler fuses a
// product into one path's sum and not the other's.)

#include <algorithm>
#include <array>

#include "normnorm/engine/columns.hpp"
#include "normnorm/math/lanes.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

template <class T, class Arch>
inline constexpr index_t column_lanes = math::lane_traits<math::lane_batch<T, Arch>>::width;

// Rows of a run that take the batch path.
template <class T, class Arch>
NORMNORM_ALWAYS_INLINE index_t batched_rows(index_t rows) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  return math::is_simd<Arch> ? rows / lanes * lanes : 0;
}

// `width` adjacent channels' values of a row as V: a full load, or for the last
// channels a zero-padded copy, so nothing past the row's end is read. A scalar: one value.
template <class V, class T>
NORMNORM_ALWAYS_INLINE V load_lanes(const T* at, index_t width) {
  if constexpr (std::is_arithmetic_v<V>) {
    return *at;
  } else {
    constexpr index_t lanes = math::lane_traits<V>::width;
    if (width == lanes) return V::load_unaligned(at);
    alignas(64) T padded[lanes] = {};
    std::copy(at, at + width, padded);
    return V::load_aligned(padded);
  }
}

template <class V, class T>
NORMNORM_ALWAYS_INLINE void store_lanes(T* at, const V& value, index_t width) {
  if constexpr (std::is_arithmetic_v<V>) {
    *at = value;
  } else {
    constexpr index_t lanes = math::lane_traits<V>::width;
    if (width == lanes) return value.store_unaligned(at);
    alignas(64) T padded[lanes];
    value.store_aligned(padded);
    std::copy(padded, padded + width, at);
  }
}

// One value per channel of a block, zero-padded: a batch reads all of them, a scalar its channel's.
template <class T, class Arch>
struct LaneValues {
  alignas(64) T values[column_lanes<T, Arch>] = {};
  template <class V>
  NORMNORM_ALWAYS_INLINE V at(index_t column) const {
    return math::load<V>(values + column);
  }
};

// Runs kernel(V zero, offset, column, position) over rows [begin, end) of run `segment`
// of the `width` channels whose first value is at `first_offset` (ColumnBlock::offset):
// batches at `offset` (column 0) for rows below batched_rows, then each channel's value
// at `offset` (its column) for the others. position = segment * rows + row: the value's
// place in its group.
template <class T, class Arch, class Kernel>
NORMNORM_ALWAYS_INLINE void for_each_row(const Columns& columns, index_t first_offset, index_t width, index_t segment,
                                         index_t begin, index_t end, Kernel&& kernel) {
  const index_t batched = batched_rows<T, Arch>(columns.rows);
  const index_t base = first_offset + segment * columns.segment_stride;
  for (index_t i = begin; i < end; ++i) {
    const index_t offset = base + i * columns.row_stride;
    if (i < batched) {
      if constexpr (math::is_simd<Arch>) kernel(math::lane_batch<T, Arch>(T(0)), offset, index_t(0), segment * columns.rows + i);
    } else {
      for (index_t j = 0; j < width; ++j) kernel(T(0), offset + j, j, segment * columns.rows + i);
    }
  }
}

// K running sums per channel of a block. The kernel adds its terms with sums.add(k, v)
// (v a batch over the block's channels, or the scalar of the channel being visited).
template <class T, class Arch, int K>
struct ColumnSums {
  static constexpr index_t lanes = column_lanes<T, Arch>;
  using B = math::lane_batch<T, Arch>;
  B slots[K][lanes];
  T tail[K][lanes];
  index_t slot = 0, column = 0;  // where the next add goes
  index_t position = 0;          // the visited value's place in its group (for_each_row's)

  void reset() {
    for (int k = 0; k < K; ++k)
      for (index_t s = 0; s < lanes; ++s) {
        slots[k][s] = B(T(0));
        tail[k][s] = T(0);
      }
  }
  NORMNORM_ALWAYS_INLINE void add(int k, const B& v) { slots[k][slot] += math::rounded_term(v); }
  template <class U = T, std::enable_if_t<!std::is_same_v<U, B>, int> = 0>
  NORMNORM_ALWAYS_INLINE void add(int k, const T& v) { tail[k][column] += math::rounded_term(v); }

  // Adds each channel's block total, as LaneSums::total, into totals[column][k].
  void fold(index_t width, std::array<double, K>* totals) const {
    for (int k = 0; k < K; ++k) {
      if constexpr (math::is_simd<Arch>) {
        alignas(64) T by_slot[lanes][lanes];  // [slot][column]
        for (index_t s = 0; s < lanes; ++s) slots[k][s].store_aligned(by_slot[s]);
        for (index_t j = 0; j < width; ++j) {
          alignas(64) T by_column[lanes];
          for (index_t s = 0; s < lanes; ++s) by_column[s] = by_slot[s][j];
          totals[j][static_cast<std::size_t>(k)] += math::lane_sum(B::load_aligned(by_column)) + static_cast<double>(tail[k][j]);
        }
      } else {
        totals[0][static_cast<std::size_t>(k)] += math::lane_sum(slots[k][0]) + static_cast<double>(tail[k][0]);
      }
    }
  }
};

// K sums per channel of the `width` channels from `first_offset`, in blocks of Block
// rows per run (reduce_group's reduction_block; the backward's chunk), each block's
// added into totals[j] (column j; the caller starts them, at zero or at a running sum,
// as the contiguous path's `+=` per block). kernel(V zero, offset, column, sums) as
// for_each_row's, plus the sums.
template <class T, class Arch, int K, index_t Block = math::reduction_block, class Kernel>
inline void reduce_columns(const Columns& columns, index_t first_offset, index_t width, Kernel&& kernel,
                           std::array<double, K>* totals) {
  constexpr index_t lanes = column_lanes<T, Arch>;
  static_assert(Block % 64 == 0, "a block is whole batches for every width");
  ColumnSums<T, Arch, K> sums;
  for (index_t segment = 0; segment < columns.segments; ++segment)
    for (index_t start = 0; start < columns.rows; start += Block) {
      sums.reset();
      for_each_row<T, Arch>(columns, first_offset, width, segment, start, std::min(columns.rows, start + Block),
                            [&](auto zero, index_t offset, index_t column, index_t position) {
                              sums.slot = (position - segment * columns.rows) % lanes;
                              sums.column = column;
                              sums.position = position;
                              kernel(zero, offset, column, sums);
                            });
      sums.fold(width, totals);
    }
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
