// The estimator registry (estimators/registry.hpp): every enumerator of
// LambdaEstimator is registered once, under the name the adapters parse; the
// paper's `order = 1` selects the gradient step; each moment-sums estimator's
// sensitivity is the derivative of its own lambda (checked by central differences),
// which is what the backward multiplies d g1 / d h and d g2 / d h by.

#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>

#include "normnorm/normnorm.hpp"

using namespace normnorm;

TEST_CASE("estimator registry: every estimator once, with its name", "[estimators][registry]") {
  std::set<int> ids;
  std::set<std::string> names;
  int count = 0;
  estimators::for_each([&](auto e) {
    using E = decltype(e);
    ids.insert(static_cast<int>(E::id));
    names.insert(E::name);
    ++count;
    CHECK(estimators::is_registered(E::id));
    CHECK(std::string(estimators::name(E::id)) == E::name);
    REQUIRE(estimators::from_name(E::name).has_value());
    CHECK(*estimators::from_name(E::name) == E::id);
  });
  CHECK(count == 4);
  CHECK(ids.size() == 4);
  CHECK(names.size() == 4);
  for (LambdaEstimator id : {LambdaEstimator::newton_step, LambdaEstimator::gradient_step, LambdaEstimator::newton,
                             LambdaEstimator::exact})
    CHECK(ids.count(static_cast<int>(id)) == 1);
  CHECK(estimators::names() == "newton_step, gradient_step, newton or exact");
  CHECK_FALSE(estimators::from_name("bisection").has_value());
  CHECK_FALSE(estimators::is_registered(static_cast<LambdaEstimator>(9)));
  CHECK(std::string(estimators::name(static_cast<LambdaEstimator>(9))) == "unknown");
}

TEST_CASE("estimator registry: order 1 is the gradient step, and only for newton_step", "[estimators][registry]") {
  Options o;
  CHECK(estimators::selected(o) == LambdaEstimator::newton_step);
  o.order = 1;
  CHECK(estimators::selected(o) == LambdaEstimator::gradient_step);
  CHECK(uses_gradient_step(o));
  o.estimator = LambdaEstimator::exact;
  CHECK(estimators::selected(o) == LambdaEstimator::exact);
  CHECK(searches_lambda(o));
  CHECK_FALSE(uses_gradient_step(o));
  // The same lambda either way of asking for the gradient step.
  Options by_order, by_estimator;
  by_order.order = 1;
  by_order.alpha = by_estimator.alpha = 0.7;
  by_estimator.estimator = LambdaEstimator::gradient_step;
  const estimators::Moments m{0.3, 1.7};
  CHECK(estimators::lambda_from(by_order, m) == estimators::lambda_from(by_estimator, m));
  CHECK(estimators::lambda_from(by_order, m) == 1.0 - 0.7 * 0.3);
}

TEST_CASE("estimator registry: check refuses what an estimator cannot take", "[estimators][registry]") {
  Options o;
  CHECK_FALSE(estimators::check(o).has_value());
  o.estimator = LambdaEstimator::newton;
  o.newton_iterations = 0;
  REQUIRE(estimators::check(o).has_value());
  CHECK(*estimators::check(o) == "newton_iterations must be in [1, 16], got 0");
  o.newton_iterations = 16;
  CHECK_FALSE(estimators::check(o).has_value());
  o.estimator = LambdaEstimator::newton_step;
  o.newton_iterations = 0;  // ignored by the estimators that do not search
  CHECK_FALSE(estimators::check(o).has_value());
  o.estimator = static_cast<LambdaEstimator>(-1);
  REQUIRE(estimators::check(o).has_value());
  CHECK(*estimators::check(o) == "estimator must be newton_step, gradient_step, newton or exact, got -1");
}

TEST_CASE("estimator registry: a moment estimator's sensitivity is its lambda's derivative", "[estimators][registry]") {
  int checked = 0;
  estimators::for_each([&](auto e) {
    using E = decltype(e);
    if constexpr (E::reads == estimators::Reads::moment_sums) {
      Options o;
      o.estimator = E::id;
      for (double alpha : {1.0, 0.35})
        for (const estimators::Moments m : {estimators::Moments{0.2, 1.3}, estimators::Moments{-0.7, 0.4}}) {
          INFO(E::name << " alpha " << alpha << " g1 " << m.g1 << " g2 " << m.g2);
          o.alpha = alpha;
          const double step = 1e-6;
          const double d_g1 = (E::lambda(o, {m.g1 + step, m.g2}) - E::lambda(o, {m.g1 - step, m.g2})) / (2 * step);
          const double d_g2 = (E::lambda(o, {m.g1, m.g2 + step}) - E::lambda(o, {m.g1, m.g2 - step})) / (2 * step);
          const estimators::Sensitivity k = E::sensitivity(o, m);
          CHECK(k.k_g1 == Approx(d_g1).epsilon(1e-7).margin(1e-9));
          CHECK(k.k_g2 == Approx(d_g2).epsilon(1e-7).margin(1e-9));
          CHECK(E::lambda(o, {0.0, m.g2}) == 1.0);  // lambda = 1 where the gradient vanishes
          ++checked;
        }
    } else {
      Options o;
      o.estimator = E::id;
      const math::LambdaSearchSettings settings = E::search_settings(o);
      CHECK(settings.lambda_min <= 1.0);
      CHECK(settings.lambda_max >= 1.0);
    }
  });
  CHECK(checked == 8);
}
