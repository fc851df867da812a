#pragma once
// Reductions over ranks for the batch forms (docs/distributed.md), on top of
// Reducer::allgather: every sum over ranks is added here, in rank order, so it is
// the same bits on every rank and from run to run for a given rank count.
//
// Also the handshake each distributed forward and backward starts with (run in the
// caller's translation unit, api.hpp): one collective carrying a fingerprint of the
// call (form, channels, options, value type, mode, noise key), whether the rank's
// own checks passed, and its group size and element count. Every rank reads the
// same gathered values, so every rank reaches the same verdict and message.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "normnorm/distributed/reducer.hpp"
#include "normnorm/layers/config.hpp"
#include "normnorm/layout.hpp"
#include "normnorm/noise/noise_source.hpp"
#include "normnorm/options.hpp"
#include "normnorm/status.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {

// What a distributed call knows about the global batch after the handshake.
struct GlobalBatch {
  index_t group_size = 0;    // M: the sum of every rank's group size
  index_t noise_offset = 0;  // elements held by lower ranks: this rank's first flat index in the global batch
  index_t elements = 0;      // elements of the whole global batch
};

NORMNORM_TARGET_NAMESPACE_BEGIN

// values[i] <- the sum over ranks of values[i], added in rank order (rank 0's value first).
inline void allreduce_sum(const Reducer& reducer, double* values, std::size_t count) {
  const double* all = reducer.allgather(values, count);
  const int ranks = reducer.size();
  for (std::size_t i = 0; i < count; ++i) {
    double total = all[i];
    for (int r = 1; r < ranks; ++r) total += all[static_cast<std::size_t>(r) * count + i];
    values[i] = total;
  }
}

// As allreduce_sum over `count` values laid out in records of `stride`: the first
// `sums` values of each record are summed in rank order, the others take their
// maximum over ranks (NaN if any rank has NaN).
inline void allreduce_sum_max(const Reducer& reducer, double* values, std::size_t count, std::size_t stride,
                              std::size_t sums) {
  const double* all = reducer.allgather(values, count);
  const int ranks = reducer.size();
  for (std::size_t i = 0; i < count; ++i) {
    const bool is_sum = i % stride < sums;
    double total = all[i];
    for (int r = 1; r < ranks; ++r) {
      const double v = all[static_cast<std::size_t>(r) * count + i];
      if (is_sum) total += v;
      else if (std::isnan(v) || v > total) total = std::isnan(total) ? total : v;
    }
    values[i] = total;
  }
}

namespace distributed_detail {

inline std::uint64_t mix(std::uint64_t hash, std::uint64_t value) {
  for (int byte = 0; byte < 8; ++byte) {
    hash ^= (value >> (8 * byte)) & 0xffu;
    hash *= 0x100000001b3ull;  // FNV-1a
  }
  return hash;
}
inline std::uint64_t bits_of(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

}  // namespace distributed_detail

// A hash of everything that must agree across ranks for their collectives to line
// up and their results to be one global batch's: options, form, value type, the
// stage (forward or backward), mode, running statistics, and the noise key.
template <class T>
inline std::uint64_t call_fingerprint(const LayerConfig& config, int stage, int mode, bool running,
                                      const NoiseSource<T>& noise) {
  using distributed_detail::bits_of;
  using distributed_detail::mix;
  const Options& o = config.options;
  std::uint64_t h = 0xcbf29ce484222325ull;
  h = mix(h, static_cast<std::uint64_t>(config.form));
  h = mix(h, static_cast<std::uint64_t>(config.num_features));
  h = mix(h, sizeof(T));
  h = mix(h, static_cast<std::uint64_t>(stage));
  h = mix(h, static_cast<std::uint64_t>(mode));
  h = mix(h, running ? 1u : 0u);
  h = mix(h, bits_of(o.eps));
  h = mix(h, o.momentum ? bits_of(*o.momentum) : 0x7ff8dead00000000ull);
  h = mix(h, (o.affine ? 1u : 0u) | (o.track_running_stats ? 2u : 0u) | (o.standardize ? 4u : 0u) |
                 (o.power_transform ? 8u : 0u));
  h = mix(h, bits_of(o.noise_train));
  h = mix(h, static_cast<std::uint64_t>(o.order));
  h = mix(h, static_cast<std::uint64_t>(o.estimator));
  h = mix(h, static_cast<std::uint64_t>(o.newton_iterations));
  h = mix(h, bits_of(o.alpha));
  h = mix(h, static_cast<std::uint64_t>(noise.kind));
  if (noise.kind == NoiseKind::philox) {
    h = mix(h, noise.seed);
    h = mix(h, noise.call);
  }
  return h;
}

// The handshake: one allgather of 9 doubles per rank. `local` is this rank's own
// verdict on its arguments (every rank calls this even when its own checks failed,
// so no rank is left waiting in a later collective). Returns the same error on every
// rank when the ranks disagree or one refused the call; a rank's own error is
// returned as is on that rank.
inline Status handshake(const Reducer& reducer, const LayerConfig& config, const char* stage_name,
                        std::uint64_t fingerprint, const Layout& layout, bool training, const Status& local,
                        GlobalBatch& global) {
  constexpr std::size_t width = 9;
  double mine[width] = {
      1.0,  // a version tag for the record layout
      static_cast<double>(fingerprint & 0xffffu),
      static_cast<double>((fingerprint >> 16) & 0xffffu),
      static_cast<double>((fingerprint >> 32) & 0xffffu),
      static_cast<double>(fingerprint >> 48),
      static_cast<double>(config.num_features),
      local.ok() ? 1.0 : 0.0,
      static_cast<double>(layout.group_size()),
      static_cast<double>(layout.num_elements()),
  };
  if (!local.ok()) mine[7] = mine[8] = 0.0;
  const double* all = reducer.allgather(mine, width);
  const int ranks = reducer.size(), self = reducer.rank();
  const std::string prefix = std::string("normnorm: ") + config.name() + ": distributed " + stage_name + " over " +
                             std::to_string(ranks) + " ranks: ";
  const std::string nothing = "; nothing was written on any rank";
  for (int r = 0; r < ranks; ++r) {
    const double* rec = all + static_cast<std::size_t>(r) * width;
    if (rec[6] != 1.0) {
      if (r == self) return local;
      return Status::invalid_argument(prefix + "rank " + std::to_string(r) + " refused the call (its own error says why)" +
                                      nothing);
    }
  }
  for (int r = 1; r < ranks; ++r) {
    const double* rec = all + static_cast<std::size_t>(r) * width;
    if (rec[0] != all[0] || rec[5] != all[5])
      return Status::invalid_argument(prefix + "rank " + std::to_string(r) + " has " +
                                      std::to_string(static_cast<long long>(rec[5])) + " channels, rank 0 has " +
                                      std::to_string(static_cast<long long>(all[5])) + nothing);
    for (std::size_t k = 1; k < 5; ++k)
      if (rec[k] != all[k])
        return Status::invalid_argument(
            prefix + "rank " + std::to_string(r) +
            "'s call differs from rank 0's (options, form, value type, mode, running statistics, stage or noise "
            "seed/call; every rank must make the same call on its slice of the batch)" +
            nothing);
  }
  double group_size = 0.0, offset = 0.0, elements = 0.0;
  for (int r = 0; r < ranks; ++r) {
    const double* rec = all + static_cast<std::size_t>(r) * width;
    group_size += rec[7];
    if (r < self) offset += rec[8];
    elements += rec[8];
  }
  if (training && group_size < 2)
    return Status::invalid_argument(prefix + "training needs more than one value per channel over all ranks, got " +
                                    std::to_string(static_cast<long long>(group_size)) + nothing);
  global.group_size = static_cast<index_t>(group_size);
  global.noise_offset = static_cast<index_t>(offset);
  global.elements = static_cast<index_t>(elements);
  return {};
}

// One distributed forward or backward on the caller's side (api.hpp): agree() runs the
// handshake once this rank's own checks have passed. A call that returns before that
// (its own checks failed, or an allocation did) still runs the handshake, refusing, from
// the destructor, so the other ranks are not left waiting and stop with an error naming
// this rank. With a null reducer it does nothing.
class DistributedCall {
 public:
  DistributedCall(const Reducer* reducer, const LayerConfig& config, const char* stage_name)
      : reducer_(reducer), config_(&config), stage_name_(stage_name) {}
  DistributedCall(const DistributedCall&) = delete;
  DistributedCall& operator=(const DistributedCall&) = delete;
  ~DistributedCall() {
    if (!reducer_ || done_) return;
    GlobalBatch unused;
#if NORMNORM_EXCEPTIONS
    try {
      handshake(*reducer_, *config_, stage_name_, 0, Layout{}, false, refused(), unused);
    } catch (...) {  // the transport failed too: nothing more to tell the other ranks
    }
#else
    handshake(*reducer_, *config_, stage_name_, 0, Layout{}, false, refused(), unused);
#endif
  }
  // The call goes on in another function that makes its own DistributedCall (a 2-byte
  // storage type's call handing over to its compute type's): this one stays silent.
  void hand_over() { done_ = true; }
  Status agree(std::uint64_t fingerprint, const Layout& layout, bool training, GlobalBatch& global) {
    done_ = true;
    return handshake(*reducer_, *config_, stage_name_, fingerprint, layout, training, Status{}, global);
  }

 private:
  static Status refused() { return Status::invalid_argument("refused"); }
  const Reducer* reducer_;
  const LayerConfig* config_;
  const char* stage_name_;
  bool done_ = false;
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
