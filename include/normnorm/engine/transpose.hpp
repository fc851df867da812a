#pragma once
// Blocked transposes between a caller's layout and the engine's. Two layouts
// are "channels across the row": BatchNormalNorm1d's (N, C), whose groups are
// columns, and channels-last (N, H, W, C) input of the 2-d forms. The engine
// runs both on a transposed copy, where every group is contiguous and the SIMD
// kernels apply; results are bit-identical to the contiguous (N, C, ...) case.

#include <algorithm>
#include <type_traits>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/config.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {

// `batches` matrices of rows x cols in the caller's memory; the engine's copy
// holds each as cols x rows.
struct Transposition {
  index_t batches = 0, rows = 0, cols = 0;
  bool active() const { return batches > 0; }
  index_t elements() const { return batches * rows * cols; }
};

// Above: the type the kernel tables pass between translation units. Below: code,
// compiled per instruction set (detail/target_namespace.hpp).
NORMNORM_TARGET_NAMESPACE_BEGIN

namespace transpose_detail {

// dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols.
template <class T>
inline void block(const T* src, index_t src_stride, T* dst, index_t dst_stride, index_t rows, index_t cols) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

#if XSIMD_WITH_AVX512F
// The same for a full 16 x 16 block of floats, in registers: 16 loads, three
// rounds of shuffles (pairs of floats, pairs of doubles, 128-bit lanes), 16 stores.
inline void block16(const float* src, index_t src_stride, float* dst, index_t dst_stride) {
  __m512 row[16], pair[16];
  for (int i = 0; i < 16; ++i) row[i] = _mm512_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 16; i += 2) {
    pair[i] = _mm512_unpacklo_ps(row[i], row[i + 1]);
    pair[i + 1] = _mm512_unpackhi_ps(row[i], row[i + 1]);
  }
  // quad[4 g + k], k = 0..3: rows 4g..4g+3 of columns 4L + k in 128-bit lane L.
  __m512 quad[16];
  for (int g = 0; g < 4; ++g) {
    const __m512d t0 = _mm512_castps_pd(pair[4 * g]), t1 = _mm512_castps_pd(pair[4 * g + 1]);
    const __m512d t2 = _mm512_castps_pd(pair[4 * g + 2]), t3 = _mm512_castps_pd(pair[4 * g + 3]);
    quad[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    quad[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    quad[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    quad[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 low01 = _mm512_shuffle_f32x4(quad[k], quad[4 + k], 0x44);       // lanes 0, 1 of groups 0, 1
    const __m512 high01 = _mm512_shuffle_f32x4(quad[k], quad[4 + k], 0xEE);      // lanes 2, 3
    const __m512 low23 = _mm512_shuffle_f32x4(quad[8 + k], quad[12 + k], 0x44);  // groups 2, 3
    const __m512 high23 = _mm512_shuffle_f32x4(quad[8 + k], quad[12 + k], 0xEE);
    _mm512_storeu_ps(dst + (0 + k) * dst_stride, _mm512_shuffle_f32x4(low01, low23, 0x88));
    _mm512_storeu_ps(dst + (4 + k) * dst_stride, _mm512_shuffle_f32x4(low01, low23, 0xDD));
    _mm512_storeu_ps(dst + (8 + k) * dst_stride, _mm512_shuffle_f32x4(high01, high23, 0x88));
    _mm512_storeu_ps(dst + (12 + k) * dst_stride, _mm512_shuffle_f32x4(high01, high23, 0xDD));
  }
}
#endif

template <class T, class Arch>
constexpr bool has_block16() {
#if XSIMD_WITH_AVX512F
  return std::is_same_v<T, float> && std::is_base_of_v<xsimd::avx512f, Arch>;
#else
  return false;
#endif
}

}  // namespace transpose_detail

// to_engine: dst[b][c][r] = src[b][r][c]; otherwise the inverse. Arch names the
// instruction set of the caller's kernels (engine/dispatch.hpp): with AVX-512,
// float moves in 16 x 16 register blocks; otherwise element by element.
template <class T, class Arch = xsimd::default_arch>
inline void transpose(const Transposition& t, const T* src, T* dst, bool to_engine, const Workers& workers) {
  constexpr index_t tile = 32;  // a 32 x 32 tile of floats is 4 KiB: both sides stay in L1
  const index_t row_tiles = (t.rows + tile - 1) / tile;
  const index_t rows = t.rows, cols = t.cols;
  parallel_for(workers, t.batches * row_tiles, 2.0 * double(tile * cols * static_cast<index_t>(sizeof(T))),
               double(tile * cols), [&](index_t item) {
                 const index_t b = item / row_tiles, r0 = (item % row_tiles) * tile;
                 const index_t r1 = std::min(rows, r0 + tile);
                 const T* s = src + b * rows * cols;
                 T* d = dst + b * rows * cols;
                 for (index_t c0 = 0; c0 < cols; c0 += tile) {
                   const index_t c1 = std::min(cols, c0 + tile);
                   for (index_t r = r0; r < r1; r += 16)
                     for (index_t c = c0; c < c1; c += 16) {
                       const index_t nr = std::min<index_t>(16, r1 - r), nc = std::min<index_t>(16, c1 - c);
#if XSIMD_WITH_AVX512F
                       if constexpr (transpose_detail::has_block16<T, Arch>()) {
                         if (nr == 16 && nc == 16) {
                           if (to_engine) transpose_detail::block16(s + r * cols + c, cols, d + c * rows + r, rows);
                           else transpose_detail::block16(s + c * rows + r, rows, d + r * cols + c, cols);
                           continue;
                         }
                       }
#endif
                       if (to_engine) transpose_detail::block(s + r * cols + c, cols, d + c * rows + r, rows, nr, nc);
                       else transpose_detail::block(s + c * rows + r, rows, d + r * cols + c, cols, nc, nr);
                     }
                 }
               });
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
