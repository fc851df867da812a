#pragma once
// A lambda estimator in one place: what it reads from a group, how that becomes
// lambda, and what the backward needs of it. Each estimator is a struct in its
// own file of this directory, listed once in registry.hpp; the engine, the
// validation and the adapters ask the registry and never name an estimator.
//
// An estimator struct E has
//   static constexpr LambdaEstimator id;      its enumerator (options.hpp)
//   static constexpr const char* name;        its spelling in messages and adapters
//   static constexpr Reads reads;             what the forward gathers for it
//   static std::optional<std::string> check(const Options&);  why options are refused, if they are
// and, by what it reads:
//   Reads::moment_sums: the five group means of math::lambda_terms, reduced to the
//     gradient g1 and curvature g2 of the approximate NLL at lambda = 1 (docs/math.md):
//       static double lambda(const Options&, const Moments&);
//       static Sensitivity sensitivity(const Options&, const Moments&);
//     sensitivity gives d lambda / d g1 and d lambda / d g2, from which the backward
//     forms d lambda / d h_j (math::lambda_sensitivity).
//   Reads::group_values: the group's standardized values, searched by
//     math::search_lambda:
//       static math::LambdaSearchSettings search_settings(const Options&);
//     the search's trace gives the backward's d lambda / d h_j (math::lambda_gradient).

#include <optional>
#include <string>

#include "normnorm/math/lambda_search_settings.hpp"
#include "normnorm/options.hpp"

namespace normnorm::estimators {

enum class Reads { moment_sums, group_values };

// The approximate NLL's gradient and curvature at lambda = 1 (docs/math.md, "Lambda").
struct Moments {
  double g1 = 0, g2 = 0;
};

// d lambda / d g1 and d lambda / d g2.
struct Sensitivity {
  double k_g1 = 0, k_g2 = 0;
};

}  // namespace normnorm::estimators
