#pragma once
// Every lambda estimator, listed once. Adding one: its file in this directory
// (estimator.hpp says what it declares), its enumerator in LambdaEstimator, and
// its struct in `Registered` below. Nothing else names estimators: the engine,
// the validation, memory_plan and the adapters go through these functions.

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "normnorm/estimators/estimator.hpp"
#include "normnorm/estimators/exact.hpp"
#include "normnorm/estimators/gradient_step.hpp"
#include "normnorm/estimators/newton.hpp"
#include "normnorm/estimators/newton_step.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::estimators {
NORMNORM_TARGET_NAMESPACE_BEGIN

template <class... E>
struct List {};

using Registered = List<NewtonStep, GradientStep, Newton, Exact>;

namespace registry_detail {

template <class F, class... E>
auto visit(LambdaEstimator id, F& f, List<E...>) {
  using R = std::common_type_t<decltype(f(E{}))...>;
  if constexpr (std::is_void_v<R>) {
    (void)((E::id == id ? (f(E{}), true) : false) || ...);
  } else {
    R result{};
    (void)((E::id == id ? (result = f(E{}), true) : false) || ...);
    return result;
  }
}

template <class F, class... E>
void for_each(F& f, List<E...>) {
  (f(E{}), ...);
}

}  // namespace registry_detail

// f(E{}) for the estimator registered as `id`; for an unregistered id (which
// validation refuses), f is not called and the result is value-initialized.
template <class F>
auto visit(LambdaEstimator id, F&& f) {
  return registry_detail::visit(id, f, Registered{});
}

template <class F>
void for_each(F&& f) {
  registry_detail::for_each(f, Registered{});
}

// The estimator the options select: `order = 1` is the paper's spelling of the
// gradient step, so newton_step with order 1 is gradient_step.
inline LambdaEstimator selected(const Options& options) {
  if (options.estimator == LambdaEstimator::newton_step && options.order == 1) return LambdaEstimator::gradient_step;
  return options.estimator;
}

template <class F>
auto visit(const Options& options, F&& f) {
  return visit(selected(options), std::forward<F>(f));
}

inline bool is_registered(LambdaEstimator id) {
  return visit(id, [](auto) { return true; });
}

inline const char* name(LambdaEstimator id) {
  const char* spelled = visit(id, [](auto e) { return decltype(e)::name; });
  return spelled ? spelled : "unknown";
}

inline std::optional<LambdaEstimator> from_name(std::string_view spelled) {
  std::optional<LambdaEstimator> found;
  for_each([&](auto e) {
    if (spelled == decltype(e)::name) found = decltype(e)::id;
  });
  return found;
}

// "newton_step, gradient_step, newton or exact": for messages.
inline std::string names() {
  std::string list;
  int count = 0, total = 0;
  for_each([&](auto) { ++total; });
  for_each([&](auto e) {
    if (count > 0) list += count + 1 == total ? " or " : ", ";
    list += decltype(e)::name;
    ++count;
  });
  return list;
}

// Why the options' estimator cannot run with them (nullopt: it can).
inline std::optional<std::string> check(const Options& options) {
  if (!is_registered(options.estimator))
    return "estimator must be " + names() + ", got " + std::to_string(static_cast<int>(options.estimator));
  return visit(options, [&](auto e) { return decltype(e)::check(options); });
}

// Whether the forward gathers the group's values for a search (and keeps a trace per group).
inline bool reads_group_values(const Options& options) {
  return visit(options, [](auto e) { return decltype(e)::reads == Reads::group_values; });
}

// Lambda of a moment-sums estimator (1 for the others, which never ask).
inline double lambda_from(const Options& options, const Moments& moments) {
  return visit(options, [&](auto e) -> double {
    using E = decltype(e);
    if constexpr (E::reads == Reads::moment_sums) return E::lambda(options, moments);
    else return 1.0;
  });
}

inline Sensitivity sensitivity_from(const Options& options, const Moments& moments) {
  return visit(options, [&](auto e) -> Sensitivity {
    using E = decltype(e);
    if constexpr (E::reads == Reads::moment_sums) return E::sensitivity(options, moments);
    else return {};
  });
}

inline math::LambdaSearchSettings search_settings(const Options& options) {
  return visit(options, [&](auto e) -> math::LambdaSearchSettings {
    using E = decltype(e);
    if constexpr (E::reads == Reads::group_values) return E::search_settings(options);
    else return {};
  });
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::estimators

namespace normnorm {
NORMNORM_TARGET_NAMESPACE_BEGIN

// The public spellings of the registry's answers (docs/api.md).
inline bool uses_gradient_step(const Options& options) {
  return estimators::selected(options) == LambdaEstimator::gradient_step;
}
inline bool searches_lambda(const Options& options) { return estimators::reads_group_values(options); }
inline const char* estimator_name(LambdaEstimator estimator) { return estimators::name(estimator); }

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm
