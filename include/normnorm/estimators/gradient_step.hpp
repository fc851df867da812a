#pragma once
// The paper's order 1: one gradient step from lambda = 1, lambda = 1 - alpha g1.
// Options{order = 1} with the default estimator selects it too (registry.hpp).

#include "normnorm/estimators/estimator.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::estimators {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct GradientStep {
  static constexpr LambdaEstimator id = LambdaEstimator::gradient_step;
  static constexpr const char* name = "gradient_step";
  static constexpr Reads reads = Reads::moment_sums;

  static std::optional<std::string> check(const Options&) { return std::nullopt; }

  static double lambda(const Options& options, const Moments& m) { return 1.0 - options.alpha * m.g1; }

  static Sensitivity sensitivity(const Options& options, const Moments&) { return {-options.alpha, 0.0}; }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::estimators
