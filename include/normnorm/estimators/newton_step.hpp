#pragma once
// The paper's estimator (order 2): one Newton step from lambda = 1 on the
// approximate NLL, lambda = 1 - alpha g1 / (g2 + sqrt(eps)).

#include <cmath>

#include "normnorm/estimators/estimator.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::estimators {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct NewtonStep {
  static constexpr LambdaEstimator id = LambdaEstimator::newton_step;
  static constexpr const char* name = "newton_step";
  static constexpr Reads reads = Reads::moment_sums;

  static std::optional<std::string> check(const Options&) { return std::nullopt; }

  static double lambda(const Options& options, const Moments& m) {
    return 1.0 - options.alpha * m.g1 / (m.g2 + std::sqrt(options.eps));
  }

  static Sensitivity sensitivity(const Options& options, const Moments& m) {
    const double denominator = m.g2 + std::sqrt(options.eps);
    return {-options.alpha / denominator, options.alpha * m.g1 / (denominator * denominator)};
  }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::estimators
