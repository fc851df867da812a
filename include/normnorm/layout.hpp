#pragma once
// The layout descriptor: which values form a group, and which affine parameter
// each value uses. The engine sees only this; the forms differ only in how
// their adapters fill it in.
//
// The input is viewed, in PyTorch's row-major order, as (outer, channels, inner):
//   batch 1d  (N, C)        -> outer N, channels C, inner 1,   one channel per group, groups span the batch
//   batch 1d  (N, C, L)     -> outer N, channels C, inner L,   one channel per group, groups span the batch
//   batch 2d  (N, C, H, W)  -> outer N, channels C, inner H*W, one channel per group, groups span the batch
//   batch 3d  (N, C, D, H, W) -> as batch 2d, inner D*H*W
//   instance  (N, C, L), (N, C, H, W), (N, C, D, H, W) -> outer N, channels C, inner L, H*W or D*H*W,
//                              one channel per group
//   group     (N, C, ...)   -> outer N, channels C, inner prod(...), C/G channels per group
//   layer     (..., *norm)  -> outer prod(...), channels prod(norm), inner 1, all channels in one group
// A group is a list of segments (one per sample, or one per batch when groups
// span the batch); a segment is contiguous: channels_per_group runs of `inner`
// values, run j using affine parameter (first channel of the group + j).

#include "normnorm/config.hpp"

namespace normnorm {

// How an (N, C, ...) tensor sits in memory: PyTorch's contiguous (row-major) order;
// channels-last (N, ..., C), PyTorch's torch.channels_last; or column-major, the
// first axis fastest (Eigen's default ColMajor, Fortran order). Shapes are always
// given in the logical (N, C, ...) order. engine/placement.hpp says how each runs.
enum class MemoryFormat { contiguous, channels_last, column_major };

struct Layout {
  index_t outer = 0;
  index_t channels = 0;
  index_t inner = 1;
  index_t channels_per_group = 1;
  bool groups_span_batch = false;

  // Always inlined: the kernels of every target call these (detail/target_namespace.hpp).
  NORMNORM_ALWAYS_INLINE index_t groups_per_sample() const { return channels / channels_per_group; }
  NORMNORM_ALWAYS_INLINE index_t num_groups() const { return groups_span_batch ? groups_per_sample() : outer * groups_per_sample(); }
  NORMNORM_ALWAYS_INLINE index_t segments_per_group() const { return groups_span_batch ? outer : 1; }
  NORMNORM_ALWAYS_INLINE index_t segment_length() const { return channels_per_group * inner; }
  NORMNORM_ALWAYS_INLINE index_t group_size() const { return segments_per_group() * segment_length(); }
  NORMNORM_ALWAYS_INLINE index_t num_elements() const { return outer * channels * inner; }
  NORMNORM_ALWAYS_INLINE index_t sample_stride() const { return channels * inner; }

  // Offset of segment `segment` of group `group` in the flat input.
  NORMNORM_ALWAYS_INLINE index_t segment_offset(index_t group, index_t segment) const {
    if (groups_span_batch) return segment * sample_stride() + group * segment_length();
    const index_t sample = group / groups_per_sample();
    return sample * sample_stride() + (group % groups_per_sample()) * segment_length();
  }
  // Affine parameter of the first run of the group.
  NORMNORM_ALWAYS_INLINE index_t first_channel(index_t group) const { return (group % groups_per_sample()) * channels_per_group; }
};

}  // namespace normnorm
