#pragma once
// exact: the maximum-likelihood lambda of the group, by a safeguarded
// Newton/bisection search in [-8, 10] (docs/lambda-search.md).

#include "normnorm/estimators/estimator.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::estimators {
NORMNORM_TARGET_NAMESPACE_BEGIN

struct Exact {
  static constexpr LambdaEstimator id = LambdaEstimator::exact;
  static constexpr const char* name = "exact";
  static constexpr Reads reads = Reads::group_values;

  static std::optional<std::string> check(const Options&) { return std::nullopt; }

  static math::LambdaSearchSettings search_settings(const Options&) {
    math::LambdaSearchSettings settings;
    settings.kind = math::LambdaSearchKind::exact;
    return settings;
  }
};

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::estimators
