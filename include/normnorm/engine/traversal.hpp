#pragma once
// Walking a group: reductions over its contiguous segments in fixed blocks, and
// its affine runs (stretches of values sharing, or stepping through, affine
// parameters). Every loop order here is a function of the layout alone.

#include <array>

#include "normnorm/layout.hpp"
#include "normnorm/math/lanes.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// Sums K per-element quantities over a group. kernel(V zero, index_t offset, sums)
// adds the terms of the lane(s) at flat offset `offset` into `sums`.
template <class T, class Arch, int K, class Kernel>
inline std::array<double, K> reduce_group(const Layout& layout, index_t group, Kernel&& kernel) {
  std::array<double, K> totals{};
  math::LaneSums<T, Arch, K> sums;
  const index_t length = layout.segment_length();
  for (index_t segment = 0; segment < layout.segments_per_group(); ++segment) {
    const index_t base = layout.segment_offset(group, segment);
    for (index_t start = 0; start < length; start += math::reduction_block) {
      const index_t n = std::min(math::reduction_block, length - start);
      sums.reset();
      math::for_each_lane<T, Arch>(n, [&](auto zero, index_t i) { kernel(zero, base + start + i, sums); });
      for (int k = 0; k < K; ++k) totals[static_cast<std::size_t>(k)] += sums.total(k);
    }
  }
  return totals;
}

// An affine run: `length` values at flat `offset`. When per_element is false
// they all use affine parameter `channel`; when true value i uses `channel + i`
// (the layer form, where every position of normalized_shape has its own).
struct AffineRun {
  index_t offset, length, channel;
  bool per_element;
};

template <class Visitor>
inline void for_each_affine_run(const Layout& layout, index_t group, Visitor&& visit) {
  const index_t first_channel = layout.first_channel(group);
  for (index_t segment = 0; segment < layout.segments_per_group(); ++segment) {
    const index_t base = layout.segment_offset(group, segment);
    if (layout.inner == 1) {
      visit(AffineRun{base, layout.segment_length(), first_channel, true});
    } else {
      for (index_t j = 0; j < layout.channels_per_group; ++j)
        visit(AffineRun{base + j * layout.inner, layout.inner, first_channel + j, false});
    }
  }
}

// The affine parameter(s) for lane(s) i of a run; `fallback` when there is none.
template <class V, class T>
inline V affine_at(const T* params, const AffineRun& run, index_t i, T fallback) {
  if (!params) return V(fallback);
  if (run.per_element) return math::load<V>(params + run.channel + i);
  return V(params[run.channel]);
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine

#include "normnorm/detail/end_simd_code.hpp"
