#pragma once
// Where one call's scratch goes in the context's workspace: each part at an
// aligned offset, so the call needs exactly `bytes` (normnorm::memory_plan reports
// it). Plain arithmetic, run in the caller's translation unit before the kernel.

#include <cstddef>

#include "normnorm/config.hpp"
#include "normnorm/context.hpp"
#include "normnorm/detail/target_namespace.hpp"
#include "normnorm/workspace.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct ScratchPlan {
  // Byte offsets of the parts (meaningful where the count is > 0).
  std::size_t transposed = 0, verdicts = 0, extremes = 0, interleaved = 0, channel_sums = 0, rank_sums = 0,
              partials = 0, block_noise = 0;
  // How many of each.
  index_t transposed_values = 0, verdict_count = 0, extreme_count = 0, interleaved_values = 0, channel_sum_count = 0,
          rank_sum_count = 0, partial_count = 0, block_noise_values = 0;
  std::size_t bytes = 0;  // the whole call's scratch

  // Appends a part of `count` values of `size` bytes; returns its offset.
  std::size_t add(index_t count, std::size_t size) {
    const std::size_t offset = bytes;
    const std::size_t part = static_cast<std::size_t>(count) * size;
    bytes += (part + Workspace::alignment - 1) / Workspace::alignment * Workspace::alignment;
    return offset;
  }

  // Points each part of `scratch` into the block at `base` (null where the part is empty).
  template <class T>
  void carve(unsigned char* base, CallScratch<T>& scratch) const {
    scratch = CallScratch<T>{};
    if (transposed_values > 0) scratch.transposed = reinterpret_cast<T*>(base + transposed);
    if (verdict_count > 0) scratch.verdicts = reinterpret_cast<GroupVerdict*>(base + verdicts);
    if (extreme_count > 0) scratch.extremes = reinterpret_cast<double*>(base + extremes);
    if (interleaved_values > 0) scratch.interleaved = reinterpret_cast<T*>(base + interleaved);
    if (channel_sum_count > 0) scratch.channel_sums = reinterpret_cast<double*>(base + channel_sums);
    if (rank_sum_count > 0) scratch.rank_sums = reinterpret_cast<double*>(base + rank_sums);
    if (partial_count > 0) scratch.partials = reinterpret_cast<T*>(base + partials);
    if (block_noise_values > 0) scratch.block_noise = reinterpret_cast<T*>(base + block_noise);
  }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
