#pragma once
// h = (x - mean) rstd in T, with the mean carried as two T values (hi + lo). A float
// group far from zero (x ~ 1e6, spread ~ 1) has a mean that float rounds by a good
// fraction of the spread; x - hi is exact there (Sterbenz) and lo restores the rest, so
// h stays centred. One extra subtraction per element.

#include "normnorm/math/lanes.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::engine {
NORMNORM_TARGET_NAMESPACE_BEGIN

template <class T>
struct Standardizer {
  T mean_hi = T(0), mean_lo = T(0), rstd = T(1);

  static Standardizer from(double mean, double rstd) {
    Standardizer s;
    s.mean_hi = T(mean);
    s.mean_lo = T(mean - static_cast<double>(s.mean_hi));
    s.rstd = T(rstd);
    return s;
  }
  template <class V>
  V operator()(const V& x) const {
    return ((x - V(mean_hi)) - V(mean_lo)) * V(rstd);
  }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::engine
