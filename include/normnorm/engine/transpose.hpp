#pragma once
// Blocked transposes between a caller's memory and the engine's layout, chosen by
// engine/placement.hpp where the engine cannot walk the caller's memory as it is:
// BatchNormalNorm1d's (N, C), whose groups are columns; channels-last (N, ..., C);
// and column-major input of the forms whose groups are not contiguous there.
// The engine then runs on the copy, where every group is contiguous and the SIMD
// kernels apply; with the same keyed noise, results are bit-identical to the
// contiguous (N, C, ...) case.

#include <algorithm>
#include <type_traits>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/config.hpp"
#include "normnorm/engine/parallel.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {

// `batches` matrices of rows x cols in the caller's memory, row r of batch b at
// b * caller_batch_stride + r * caller_row_stride (columns adjacent); the engine's
// copy holds each transposed: column c of batch b at b * engine_batch_stride +
// c * engine_row_stride (rows adjacent). Zero strides mean densely packed.
struct Transposition {
  index_t batches = 0, rows = 0, cols = 0;
  index_t caller_batch_stride = 0, caller_row_stride = 0, engine_batch_stride = 0, engine_row_stride = 0;

  // Densely packed batches of rows x cols, in both memories. (Always inlined, as
  // Layout's members: code of every target calls them, detail/target_namespace.hpp.)
  NORMNORM_ALWAYS_INLINE static Transposition packed(index_t batches, index_t rows, index_t cols) {
    return {batches, rows, cols, rows * cols, cols, rows * cols, rows};
  }
  NORMNORM_ALWAYS_INLINE bool active() const { return batches > 0; }
  NORMNORM_ALWAYS_INLINE index_t elements() const { return batches * rows * cols; }
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

#if XSIMD_WITH_AVX
// An 8 x 8 block of floats in registers: pairs of floats, then quads, then 128-bit halves.
inline void block8(const float* src, index_t src_stride, float* dst, index_t dst_stride) {
  __m256 row[8], pair[8], quad[8];
  for (int i = 0; i < 8; ++i) row[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    pair[i] = _mm256_unpacklo_ps(row[i], row[i + 1]);
    pair[i + 1] = _mm256_unpackhi_ps(row[i], row[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {
    quad[g + 0] = _mm256_shuffle_ps(pair[g], pair[g + 2], 0x44);
    quad[g + 1] = _mm256_shuffle_ps(pair[g], pair[g + 2], 0xEE);
    quad[g + 2] = _mm256_shuffle_ps(pair[g + 1], pair[g + 3], 0x44);
    quad[g + 3] = _mm256_shuffle_ps(pair[g + 1], pair[g + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(dst + k * dst_stride, _mm256_permute2f128_ps(quad[k], quad[4 + k], 0x20));
    _mm256_storeu_ps(dst + (4 + k) * dst_stride, _mm256_permute2f128_ps(quad[k], quad[4 + k], 0x31));
  }
}

// A 4 x 4 block of doubles: pairs, then 128-bit halves.
inline void block4(const double* src, index_t src_stride, double* dst, index_t dst_stride) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + src_stride);
  const __m256d r2 = _mm256_loadu_pd(src + 2 * src_stride), r3 = _mm256_loadu_pd(src + 3 * src_stride);
  const __m256d low01 = _mm256_unpacklo_pd(r0, r1), high01 = _mm256_unpackhi_pd(r0, r1);
  const __m256d low23 = _mm256_unpacklo_pd(r2, r3), high23 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(low01, low23, 0x20));
  _mm256_storeu_pd(dst + dst_stride, _mm256_permute2f128_pd(high01, high23, 0x20));
  _mm256_storeu_pd(dst + 2 * dst_stride, _mm256_permute2f128_pd(low01, low23, 0x31));
  _mm256_storeu_pd(dst + 3 * dst_stride, _mm256_permute2f128_pd(high01, high23, 0x31));
}
#endif

// The side of the square block moved in registers: 0 when the instruction set has none.
template <class T, class Arch>
constexpr index_t register_block() {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_same_v<T, float> && std::is_base_of_v<xsimd::avx512f, Arch>) return 16;
#endif
#if XSIMD_WITH_AVX
  if constexpr (std::is_base_of_v<xsimd::avx, Arch> || std::is_base_of_v<xsimd::avx512f, Arch>)
    return std::is_same_v<T, float> ? 8 : 4;
#endif
  return 0;
}

// One full register block, src rows src_stride apart to dst rows dst_stride apart.
template <class T, class Arch>
NORMNORM_ALWAYS_INLINE void register_transpose(const T* src, index_t src_stride, T* dst, index_t dst_stride) {
#if XSIMD_WITH_AVX512F
  if constexpr (register_block<T, Arch>() == 16) return block16(src, src_stride, dst, dst_stride);
#endif
#if XSIMD_WITH_AVX
  if constexpr (register_block<T, Arch>() == 8) return block8(src, src_stride, dst, dst_stride);
  if constexpr (register_block<T, Arch>() == 4) return block4(src, src_stride, dst, dst_stride);
#endif
  (void)src, (void)src_stride, (void)dst, (void)dst_stride;
}

}  // namespace transpose_detail

// to_engine: copy[b][c][r] = caller[b][r][c]; otherwise the inverse. Arch names the
// instruction set of the caller's kernels (engine/dispatch.hpp).
template <class T, class Arch = xsimd::default_arch>
inline void transpose(const Transposition& t, const T* src, T* dst, bool to_engine, const Workers& workers) {
  constexpr index_t tile = 32;  // a 32 x 32 tile of floats is 4 KiB: both sides stay in L1
  // Full blocks move in registers (AVX: 8 x 8 floats or 4 x 4 doubles; AVX-512: 16 x 16
  // floats); edges element by element.
  constexpr index_t block = transpose_detail::register_block<T, Arch>();
  constexpr index_t step = block > 0 ? block : 16;
  const index_t row_tiles = (t.rows + tile - 1) / tile;
  const index_t rows = t.rows, cols = t.cols;
  const index_t caller_row = t.caller_row_stride, engine_row = t.engine_row_stride;
  parallel_for(workers, t.batches * row_tiles, 2.0 * double(tile * cols * static_cast<index_t>(sizeof(T))),
               double(tile * cols), [&](index_t item) {
                 const index_t b = item / row_tiles, r0 = (item % row_tiles) * tile;
                 const index_t r1 = std::min(rows, r0 + tile);
                 // c: the caller's side of batch b; e: the engine's.
                 const index_t c_base = b * t.caller_batch_stride, e_base = b * t.engine_batch_stride;
                 for (index_t c0 = 0; c0 < cols; c0 += tile) {
                   const index_t c1 = std::min(cols, c0 + tile);
                   for (index_t r = r0; r < r1; r += step)
                     for (index_t c = c0; c < c1; c += step) {
                       const index_t nr = std::min<index_t>(step, r1 - r), nc = std::min<index_t>(step, c1 - c);
                       const index_t caller_at = c_base + r * caller_row + c, engine_at = e_base + c * engine_row + r;
                       if constexpr (block > 0) {
                         if (nr == block && nc == block) {
                           if (to_engine)
                             transpose_detail::register_transpose<T, Arch>(src + caller_at, caller_row, dst + engine_at, engine_row);
                           else
                             transpose_detail::register_transpose<T, Arch>(src + engine_at, engine_row, dst + caller_at, caller_row);
                           continue;
                         }
                       }
                       if (to_engine) transpose_detail::block(src + caller_at, caller_row, dst + engine_at, engine_row, nr, nc);
                       else transpose_detail::block(src + engine_at, engine_row, dst + caller_at, caller_row, nc, nr);
                     }
                 }
               });
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
