#pragma once
// newton(k): k Newton steps on the exact profile NLL, from lambda = 1
// (docs/lambda-search.md). `alpha` and `order` do not act on it.

#include "normnorm/estimators/estimator.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::estimators {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct Newton {
  static constexpr LambdaEstimator id = LambdaEstimator::newton;
  static constexpr const char* name = "newton";
  static constexpr Reads reads = Reads::group_values;

  static std::optional<std::string> check(const Options& options) {
    if (options.newton_iterations < 1 || options.newton_iterations > math::kMaxNewtonSteps)
      return "newton_iterations must be in [1, " + std::to_string(math::kMaxNewtonSteps) + "], got " +
             std::to_string(options.newton_iterations);
    return std::nullopt;
  }

  static math::LambdaSearchSettings search_settings(const Options& options) {
    math::LambdaSearchSettings settings;
    settings.kind = math::LambdaSearchKind::newton;
    settings.newton_steps = options.newton_iterations;
    return settings;
  }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::estimators
