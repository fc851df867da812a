#pragma once
// Blocked transposes between a caller's layout and the engine's. Two layouts
// are "channels across the row": BatchNormalNorm1d's (N, C), whose groups are
// columns, and channels-last (N, H, W, C) input of the 2-d forms. The engine
// runs both on a transposed copy, where every group is contiguous and the SIMD
// kernels apply; results are bit-identical to the contiguous (N, C, ...) case.

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "normnorm/config.hpp"
#include "normnorm/engine/parallel.hpp"

namespace normnorm::engine {

// `batches` matrices of rows x cols in the caller's memory; the engine's copy
// holds each as cols x rows.
struct Transposition {
  index_t batches = 0, rows = 0, cols = 0;
  bool active() const { return batches > 0; }
  index_t elements() const { return batches * rows * cols; }
};

// to_engine: dst[b][c][r] = src[b][r][c]; otherwise the inverse. Arch only
// names the instruction set the caller's kernels use (engine/dispatch.hpp): each
// gets its own copy, compiled (and auto-vectorized) with that set's flags.
template <class T, class Arch = xsimd::default_arch>
inline void transpose(const Transposition& t, const T* src, T* dst, bool to_engine, const Eigen::ThreadPoolDevice* device) {
  constexpr index_t tile = 32;  // a 32 x 32 tile of floats is 4 KiB: both sides stay in L1
  const index_t row_tiles = (t.rows + tile - 1) / tile;
  parallel_for(device, t.batches * row_tiles, 2.0 * double(tile * t.cols * static_cast<index_t>(sizeof(T))),
               double(tile * t.cols), [&](index_t item) {
                 const index_t b = item / row_tiles, r0 = (item % row_tiles) * tile;
                 const index_t r1 = std::min(t.rows, r0 + tile);
                 const T* s = src + b * t.rows * t.cols;
                 T* d = dst + b * t.rows * t.cols;
                 for (index_t c0 = 0; c0 < t.cols; c0 += tile) {
                   const index_t c1 = std::min(t.cols, c0 + tile);
                   for (index_t r = r0; r < r1; ++r)
                     for (index_t c = c0; c < c1; ++c) {
                       if (to_engine)
                         d[c * t.rows + r] = s[r * t.cols + c];
                       else
                         d[r * t.cols + c] = s[c * t.rows + r];
                     }
                 }
               });
}

}  // namespace normnorm::engine
