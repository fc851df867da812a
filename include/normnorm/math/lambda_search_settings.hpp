#pragma once
// The settings of a lambda search (math/lambda_search.hpp), apart from the
// search itself: the estimators (estimators/) and validation name them without
// pulling in the SIMD code.

#include <cstdint>

namespace normnorm::math {

enum class LambdaSearchKind : std::uint8_t { newton, exact };

enum class LambdaStatus : std::uint8_t {
  ok,              // exact: converged (|Newton step| <= tolerance or bracket collapsed); newton: k steps taken
  clamped_low,     // lambda = lambda_min: exact: l' > 0 there (no optimum inside); newton: last step clamped
  clamped_high,    // lambda = lambda_max, likewise
  max_iterations,  // exact: not converged within max_iterations evaluations; lambda = last usable point
  stalled,         // newton: l'' <= 0 or not finite at an iterate; lambda stays there (later steps skipped)
  degenerate,      // sigma2(1) is zero up to rounding (constant group, M = 1): lambda = 1, zero gradient
  non_finite       // the group's sums at lambda = 1 are not finite (NaN/Inf input): lambda = NaN
};

inline constexpr int kMaxNewtonSteps = 16;  // compile-time cap on newton(k)

struct LambdaSearchSettings {
  LambdaSearchKind kind = LambdaSearchKind::exact;
  int newton_steps = 1;        // newton: k in [0, kMaxNewtonSteps]
  double lambda_min = -8.0;    // bracket; both kinds clamp lambda into it.
  double lambda_max = 10.0;    // requires lambda_min <= 1 <= lambda_max, lambda_min < lambda_max
  double tolerance = 0.0;      // exact: stop when |l'/l''| <= tolerance; <= 0: default_lambda_tolerance<T>()
  int max_iterations = 64;     // exact: evaluations of l', l'' at most (>= 1); re-centring passes not counted
};

}  // namespace normnorm::math
