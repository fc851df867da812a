#pragma once
// Running statistics of the batch forms (caller-owned buffers, one value per
// channel) and their momentum / cumulative-average update.

#include <cmath>
#include <cstdint>
#include <optional>

#include "normnorm/config.hpp"

namespace normnorm {

template <class T>
struct RunningStats {
  T* mean = nullptr;
  T* var = nullptr;
  T* lambda = nullptr;
  T* norm = nullptr;
  std::int64_t* num_batches_tracked = nullptr;  // needed when momentum is none
  index_t size = 0;  // values in each of mean, var, lambda and norm

  bool present() const { return mean != nullptr; }
};

// Initial values, as in the paper's code: lambda 1, mean 0, var 1, norm sqrt(2/pi).
template <class T>
inline void reset_running_stats(const RunningStats<T>& stats, index_t channels) {
  for (index_t c = 0; c < channels; ++c) {
    stats.mean[c] = T(0);
    stats.var[c] = T(1);
    stats.lambda[c] = T(1);
    stats.norm[c] = T(std::sqrt(2.0 / 3.14159265358979323846));
  }
  if (stats.num_batches_tracked) *stats.num_batches_tracked = 0;
}

// Internals of the engine's running-statistics update, compiled into the kernels:
// per instruction set (detail/target_namespace.hpp).
namespace engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

// The update factor f of one training call: momentum, or 1 / num_batches_tracked
// (counted after this call) for the cumulative average.
inline double running_update_factor(const std::optional<double>& momentum, std::int64_t batches_after_call) {
  if (momentum) return *momentum;
  return 1.0 / static_cast<double>(batches_after_call);
}

inline double blend(double f, double batch_value, double running_value) {
  return f * batch_value + (1.0 - f) * running_value;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace engine

}  // namespace normnorm
