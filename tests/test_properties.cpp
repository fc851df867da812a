// Randomized cross-checks over a few hundred (form, shape, options, mode)
// configurations drawn with fixed seeds:
//   (a) finite-difference gradients (double, noise 0): grad_x at a few random
//       coordinates, grad_weight and grad_bias at a few parameters;
//   (b) float agrees with double: outputs, running statistics, gradients;
//   (c) [threads] bit-identical results on thread pools of 1, 2 and 3 threads
//       and without a pool;
//   (d) the SIMD path agrees with the scalar path.
// Groups whose lambda estimate is ill-conditioned (Newton denominator g2 + sqrt(eps)
// near 0) or sits at the log side's edge (|eta| = sqrt(eps), where the transform
// jumps; docs/reliability.md) are excluded from the tolerance comparisons (b, d),
// and the tests check that such exclusions stay rare.
// NCHW against NHWC (channels-last) is tests/test_channels_last.cpp's job.

#include <normnorm/normnorm.hpp>  // first: defines EIGEN_USE_THREADS before Eigen's Tensor

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"
#include "reference.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

struct RandomCase {
  LayerConfig config;
  Shape shape;
  Mode mode = Mode::train;
  unsigned data_seed = 0;
  std::string text;  // for failure messages
};

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> values) {
  std::uniform_int_distribution<std::size_t> index(0, values.size() - 1);
  return *(values.begin() + static_cast<std::ptrdiff_t>(index(rng)));
}

index_t dim(std::mt19937_64& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
bool chance(std::mt19937_64& rng, double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

// The 1-D/3-D forms (and batch 1d's (N, C, L)), drawn by random_cases from a stream
// of their own so that the paper's forms keep the cases they always had.
constexpr Form kRankForms[] = {Form::batch_1d, Form::batch_3d, Form::instance_1d, Form::instance_3d};

// One random configuration: every form, odd sizes (SIMD tails), every switch.
// rank_form >= 0 picks kRankForms[rank_form] instead of one of the paper's forms.
RandomCase random_case(std::mt19937_64& rng, bool big = false, int rank_form = -1) {
  const auto form = rank_form < 0 ? static_cast<Form>(dim(rng, 0, 4)) : kRankForms[rank_form];
  Options o = default_options(form);
  o.order = chance(rng, 0.3) ? 1 : 2;
  o.alpha = o.order == 1 ? pick(rng, {0.5, 1.0}) : pick(rng, {1.0, 1.0, 0.5, 1.5});
  o.affine = chance(rng, 0.8);
  o.standardize = chance(rng, 0.85);
  o.power_transform = chance(rng, 0.85);
  o.track_running_stats = is_batch_form(form) && chance(rng, 0.75);
  o.momentum = pick<std::optional<double>>(rng, {0.1, std::nullopt, 0.3, 1.0});
  o.eps = pick(rng, {1e-5, 1e-5, 1e-3, 0.1});
  o.noise_train = pick(rng, {0.0, o.noise_train, 1.0});
  const int k = big ? 3 : 1;  // larger shapes for the thread part
  RandomCase rc;
  switch (form) {
    case Form::batch_1d: {
      const index_t n = dim(rng, 2, 12 * k), c = dim(rng, 1, 6);
      rc.config = LayerConfig::batch_normal_norm_1d(c, o);
      rc.shape = rank_form < 0 ? Shape{n, c} : Shape{dim(rng, 1, 4 * k), c, dim(rng, 2, 9)};  // (N, C, L)
      break;
    }
    case Form::instance_1d: {
      const index_t n = dim(rng, 1, 3 * k), c = dim(rng, 1, 4);
      rc.config = LayerConfig::instance_normal_norm_1d(c, o);
      rc.shape = Shape{n, c, dim(rng, 2, 17 * k)};
      break;
    }
    case Form::batch_3d:
    case Form::instance_3d: {
      const index_t n = dim(rng, 1, 3 * k), c = dim(rng, 1, 4), d = dim(rng, 1, 3), h = dim(rng, 1, 3 * k), w = dim(rng, 2, 5);
      rc.config = form == Form::batch_3d ? LayerConfig::batch_normal_norm_3d(c, o) : LayerConfig::instance_normal_norm_3d(c, o);
      rc.shape = Shape{n, c, d, h, w};
      break;
    }
    case Form::batch_2d:
    case Form::instance_2d: {
      const index_t n = dim(rng, 1, 3 * k), c = dim(rng, 1, 4), h = dim(rng, 1, 5 * k), w = dim(rng, 2, 6 * k);
      rc.config = form == Form::batch_2d ? LayerConfig::batch_normal_norm_2d(c, o) : LayerConfig::instance_normal_norm_2d(c, o);
      rc.shape = Shape{n, c, h, w};
      break;
    }
    case Form::group: {
      const index_t n = dim(rng, 1, 3 * k), groups = dim(rng, 1, 3), per = dim(rng, 1, 3);
      const int spatial = static_cast<int>(dim(rng, 0, 2));
      rc.config = LayerConfig::group_normal_norm(groups, groups * per, o);
      rc.shape = spatial == 0   ? Shape{n, groups * per}
                 : spatial == 1 ? Shape{n, groups * per, dim(rng, 1, 7 * k)}
                                : Shape{n, groups * per, dim(rng, 1, 4 * k), dim(rng, 1, 5)};
      break;
    }
    case Form::layer: {
      const Shape normalized = chance(rng, 0.5) ? Shape{dim(rng, 2, 9 * k)} : Shape{dim(rng, 1, 4), dim(rng, 2, 5 * k)};
      rc.config = LayerConfig::layer_normal_norm(normalized, o);
      const int lead = static_cast<int>(dim(rng, 0, 2));
      rc.shape = lead == 0 ? normalized
                 : lead == 1 ? (normalized.rank() == 1 ? Shape{dim(rng, 1, 4 * k), normalized[0]}
                                                      : Shape{dim(rng, 1, 4 * k), normalized[0], normalized[1]})
                             : (normalized.rank() == 1 ? Shape{dim(rng, 1, 3), dim(rng, 1, 3 * k), normalized[0]}
                                                      : Shape{dim(rng, 1, 3), dim(rng, 1, 3 * k), normalized[0], normalized[1]});
      break;
    }
  }
  rc.mode = chance(rng, 0.65) ? Mode::train : Mode::eval;
  rc.data_seed = static_cast<unsigned>(rng() & 0xffffffu);
  std::ostringstream text;
  text << rc.config.name() << " " << rc.shape.to_string() << (rc.mode == Mode::train ? " train" : " eval")
       << " order " << o.order << " alpha " << o.alpha << " affine " << o.affine << " standardize " << o.standardize
       << " power " << o.power_transform << " track " << o.track_running_stats << " momentum "
       << (o.momentum ? std::to_string(*o.momentum) : "none") << " eps " << o.eps << " noise " << o.noise_train
       << " seed " << rc.data_seed;
  rc.text = text.str();
  return rc;
}

// Input, parameters and upstream gradient, identical in float and double (the
// double values are floats), skewed so lambda moves away from 1.
struct CaseData {
  std::vector<double> x, prime_x, weight, bias, grad_out;
};

CaseData case_data(const RandomCase& rc) {
  std::mt19937_64 rng(rc.data_seed);
  std::normal_distribution<double> normal;
  const auto n = static_cast<std::size_t>(element_count(rc.shape));
  const auto affine = static_cast<std::size_t>(rc.config.num_affine());
  auto as_float = [](double v) { return static_cast<double>(static_cast<float>(v)); };
  CaseData d;
  // Without standardization h = x: keep the tails short so the power stays moderate.
  const double skew = (rc.config.options.standardize ? 0.4 : 0.2) + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng);
  const double shift = rc.config.options.standardize ? 0.0 : -1.0;  // keep h moderate without standardization
  for (std::size_t i = 0; i < n; ++i) d.x.push_back(as_float(std::exp(skew * normal(rng)) + 0.3 * normal(rng) + shift));
  for (std::size_t i = 0; i < n; ++i) d.prime_x.push_back(as_float(1.3 * std::exp(0.5 * normal(rng)) + 0.1 * normal(rng)));
  for (std::size_t i = 0; i < affine; ++i) d.weight.push_back(as_float(1.0 + 0.3 * normal(rng)));
  for (std::size_t i = 0; i < affine; ++i) d.bias.push_back(as_float(0.2 * normal(rng)));
  for (std::size_t i = 0; i < n; ++i) d.grad_out.push_back(as_float(normal(rng)));
  return d;
}

template <class T>
std::vector<T> cast(const std::vector<double>& values) {
  return std::vector<T>(values.begin(), values.end());
}

template <class T>
void load(Harness<T>& layer, const CaseData& d, const std::vector<double>& x) {
  layer.x = cast<T>(x);
  layer.weight = cast<T>(d.weight);
  layer.bias = cast<T>(d.bias);
  layer.grad_out = cast<T>(d.grad_out);
}

// The full sequence a case runs: for evaluation of a batch form with running
// statistics, a training call on other data first; then the case's forward and backward.
// Returns the domain_error's message when training refuses the data (without
// standardization a random group can put lambda near the Newton step's pole, where
// the power overflows: docs/reliability.md), else "" after forward + backward.
template <class T>
std::string run_case(Harness<T>& layer, const RandomCase& rc, const CaseData& d) {
  layer.noise = NoiseSource<T>::philox(rc.data_seed, 3);
  try {
    if (rc.mode == Mode::eval && rc.config.has_running_stats()) {
      load(layer, d, d.prime_x);
      layer.forward(Mode::train);
    }
    load(layer, d, d.x);
    layer.forward(rc.mode);
  } catch (const std::domain_error& error) {
    CHECK_FALSE(rc.config.options.standardize);  // with standardization lambda stays moderate
    return error.what();
  }
  layer.backward();
  return "";
}

// `count` cases of the paper's forms, then count / 4 of the 1-D/3-D forms.
std::vector<RandomCase> random_cases(unsigned seed, int count, bool big = false) {
  std::mt19937_64 rng(seed), rank_rng(seed + 1);
  std::vector<RandomCase> cases;
  for (int i = 0; i < count; ++i) cases.push_back(random_case(rng, big));
  for (int i = 0; i < count / 4; ++i) cases.push_back(random_case(rank_rng, big, i % 4));
  return cases;
}

// Per-group facts of the double run that set the comparison tolerances.
struct GroupScales {
  bool comparable = true;  // lambda well conditioned and away from the log side's edge
  double psi_l = 0;        // max |gamma dy/dlambda|: how far an error in lambda moves the output
  double grad_x = 0;       // rstd max |gamma grad_out|: the size of the terms grad_x is a difference of
};

std::vector<GroupScales> group_scales(const Harness<double>& reference, double lambda_error) {
  const Options& o = reference.config.options;
  const auto& ctx = reference.context;
  const double c = std::sqrt(o.eps);
  const ReferenceGroups groups = reference_groups(reference.config, reference.shape);
  std::vector<GroupScales> scales(groups.members.size());
  for (std::size_t g = 0; g < scales.size(); ++g) {
    GroupScales& s = scales[g];
    const double lambda = ctx.lambda[g];
    if (o.power_transform && ctx.batch_statistics && o.order == 2) {
      const double denom = ctx.g2[g] + c;
      const double sensitivity = std::abs(o.alpha) * (1 / std::abs(denom) + std::abs(ctx.g1[g]) / (denom * denom));
      if (!(sensitivity * lambda_error < 1e-3)) s.comparable = false;
    }
    const double edge = std::min(std::abs(std::abs(lambda) - c), std::abs(std::abs(2 - lambda) - c));
    if (o.power_transform && edge < 1e-3) s.comparable = false;
    for (auto i : groups.members[g]) {
      const double gamma = o.affine ? std::abs(reference.weight[groups.affine_index[i]]) : 1.0;
      const double h = (reference.x[i] - ctx.mean[g]) * ctx.rstd[g];
      s.grad_x = std::max(s.grad_x, ctx.rstd[g] * gamma * std::abs(reference.grad_out[i]));
      if (!o.power_transform) continue;
      const double eta = h >= 0 ? lambda : 2 - lambda;
      if (std::abs(eta) <= c) continue;
      const double et = eta + (eta >= 0 ? c : -c), L = std::log1p(std::abs(h)), t = et * L;
      const double psi_l = std::abs(t) < 1e-8 ? 0.5 * L * L : (std::exp(t) * (t - 1) + 1) / (et * et);
      s.psi_l = std::max(s.psi_l, gamma * std::abs(psi_l));
    }
  }
  return scales;
}

// Per group: |a - b| <= rel |b| + floor * scale + psi_l |lambda_a - lambda_b|, where scale is
// the group's max |b| (outputs) or its grad_x scale (gradients).
template <class A, class B>
void compare_by_group(const std::vector<A>& a, const std::vector<B>& b, const ReferenceGroups& groups,
                      const std::vector<GroupScales>& scales, const std::vector<double>& lambda_a,
                      const std::vector<double>& lambda_b, double rel, double floor, bool gradient,
                      const std::string& what) {
  for (std::size_t g = 0; g < groups.members.size(); ++g) {
    if (!scales[g].comparable) continue;
    double scale = gradient ? scales[g].grad_x : 0.0;
    for (auto i : groups.members[g]) scale = std::max(scale, std::abs(double(b[i])));
    const double dlambda = std::abs(lambda_a[g] - lambda_b[g]);
    const double allowance = floor * scale + (gradient ? scales[g].grad_x : 1.0) * scales[g].psi_l * dlambda;
    for (auto i : groups.members[g]) {
      const double x = double(a[i]), y = double(b[i]);
      if (!(std::abs(x - y) <= rel * std::abs(y) + allowance)) {
        INFO(what << "[" << i << "] (group " << g << "): " << x << " vs " << y << ", group scale " << scale
                  << ", lambda " << lambda_a[g] << " vs " << lambda_b[g]);
        REQUIRE(std::abs(x - y) <= rel * std::abs(y) + allowance);
      }
    }
  }
}

template <class A, class B>
void compare_all(const std::vector<A>& a, const std::vector<B>& b, double rel, double floor_fraction, const std::string& what) {
  double scale = 1e-30;
  for (auto v : b) scale = std::max(scale, std::abs(double(v)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = double(a[i]), y = double(b[i]);
    if (!(std::abs(x - y) <= rel * std::abs(y) + floor_fraction * scale)) {
      INFO(what << "[" << i << "]: " << x << " vs " << y << ", scale " << scale);
      REQUIRE(std::abs(x - y) <= rel * std::abs(y) + floor_fraction * scale);
    }
  }
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// ---- (a) finite differences --------------------------------------------------------

// The outputs as a function of the current values, with every training call's
// side effects (running statistics) undone first. The derivative of
// loss = sum(out * grad_out) is taken from differences of these outputs, so large
// outputs that do not depend on the probed value add no rounding noise.
std::vector<double> outputs(Harness<double>& layer, Mode mode, const std::vector<double>& running_before,
                            std::int64_t batches_before) {
  const auto c = static_cast<std::ptrdiff_t>(layer.running_mean.size());
  const auto at = running_before.begin();
  layer.running_mean.assign(at, at + c);
  layer.running_var.assign(at + c, at + 2 * c);
  layer.running_lambda.assign(at + 2 * c, at + 3 * c);
  layer.running_norm.assign(at + 3 * c, at + 4 * c);
  layer.batches = batches_before;
  layer.forward(mode);
  return layer.out;
}

}  // namespace

TEST_CASE("random configurations: finite-difference gradients (double, no noise)", "[properties][gradcheck]") {
  int checked = 0;
  for (RandomCase rc : random_cases(20240601, 400)) {
    rc.config.options.noise_train = 0;  // noise has no gradient path to x
    INFO(rc.text);
    const CaseData d = case_data(rc);
    Harness<double> layer(rc.config, rc.shape);
    if (!run_case(layer, rc, d).empty()) continue;  // primes running statistics when evaluating, then forward + backward
    const auto grad_x = layer.grad_x, grad_weight = layer.grad_weight, grad_bias = layer.grad_bias;
    // The running statistics as they were before the case's own forward (the initial ones
    // in training, the primed ones in evaluation): every probe starts from them again.
    const Harness<double> fresh(rc.config, rc.shape);
    const Harness<double>& before = rc.mode == Mode::train ? fresh : layer;
    std::vector<double> running = before.running_mean;
    for (const auto* stat : {&before.running_var, &before.running_lambda, &before.running_norm})
      running.insert(running.end(), stat->begin(), stat->end());
    const std::int64_t batches = rc.mode == Mode::train ? 0 : layer.batches;

    std::mt19937_64 rng(rc.data_seed + 1);
    auto probe = [&](double& value, double analytic, const std::string& what) {
      const double saved = value, step = 1e-6 * std::max(1.0, std::abs(saved));
      value = saved + step;
      const auto up = outputs(layer, rc.mode, running, batches);
      value = saved - step;
      const auto down = outputs(layer, rc.mode, running, batches);
      value = saved;
      double numeric = 0;
      for (std::size_t i = 0; i < up.size(); ++i) numeric += (up[i] - down[i]) * layer.grad_out[i];
      numeric /= 2 * step;
      INFO(what << ": analytic " << analytic << ", numeric " << numeric);
      REQUIRE(std::abs(analytic - numeric) <= 5e-6 * std::max(1.0, std::abs(numeric)));
    };
    for (int k = 0; k < 3; ++k) {
      const auto i = static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, layer.x.size() - 1)(rng));
      probe(layer.x[i], grad_x[i], "grad_x[" + std::to_string(i) + "]");
    }
    if (rc.config.options.affine) {
      for (int k = 0; k < 2; ++k) {
        const auto i = static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, layer.weight.size() - 1)(rng));
        probe(layer.weight[i], grad_weight[i], "grad_weight[" + std::to_string(i) + "]");
        probe(layer.bias[i], grad_bias[i], "grad_bias[" + std::to_string(i) + "]");
      }
    }
    ++checked;
  }
  CHECK(checked == 400 + 100);  // the paper's forms, then the 1-D/3-D forms
}

TEST_CASE("random configurations: float agrees with double", "[properties]") {
  int groups_compared = 0, groups_skipped = 0;
  for (const RandomCase& rc : random_cases(777, 400)) {
    INFO(rc.text);
    const CaseData d = case_data(rc);
    Harness<double> reference(rc.config, rc.shape);
    Harness<float> layer(rc.config, rc.shape);
    const std::string refused_double = run_case(reference, rc, d);
    const std::string refused_float = run_case(layer, rc, d);
    if (!refused_double.empty() || !refused_float.empty()) continue;  // float's range is smaller
    // Float's lambda carries roundoff of a few 1e-7 times the size of its terms.
    const auto scales = group_scales(reference, 1e-6);
    for (const auto& sc : scales) (sc.comparable ? groups_compared : groups_skipped) += 1;
    const ReferenceGroups groups = reference_groups(rc.config, rc.shape);
    const auto& lf = layer.context.lambda;
    const auto& ld = reference.context.lambda;
    compare_by_group(layer.out, reference.out, groups, scales, lf, ld, 2e-4, 2e-5, false, "output");
    compare_by_group(layer.grad_x, reference.grad_x, groups, scales, lf, ld, 1e-3, 2e-4, true, "grad_x");
    const auto ok = [&] {
      std::vector<bool> flags;
      for (const auto& sc : scales) flags.push_back(sc.comparable);
      return flags;
    }();
    bool all_ok = std::all_of(ok.begin(), ok.end(), [](bool b) { return b; });
    if (all_ok) {
      compare_all(layer.grad_weight, reference.grad_weight, 1e-3, 1e-4, "grad_weight");
      compare_all(layer.grad_bias, reference.grad_bias, 1e-4, 1e-5, "grad_bias");
    }
    if (all_ok && rc.config.has_running_stats()) {
      compare_all(layer.running_mean, reference.running_mean, 1e-5, 1e-6, "running_mean");
      compare_all(layer.running_var, reference.running_var, 1e-5, 1e-6, "running_var");
      compare_all(layer.running_lambda, reference.running_lambda, 1e-4, 1e-5, "running_lambda");
      compare_all(layer.running_norm, reference.running_norm, 1e-4, 1e-5, "running_norm");
    }
  }
  if (std::getenv("NORMNORM_PROPERTIES_VERBOSE")) WARN(groups_compared << " groups compared, " << groups_skipped << " skipped");
  INFO(groups_compared << " groups compared, " << groups_skipped << " skipped as ill-conditioned");
  CHECK(groups_skipped * 50 < groups_compared);
}

TEST_CASE("random configurations: SIMD agrees with scalar", "[properties][simd]") {
  int groups_compared = 0, groups_skipped = 0;
  for (const RandomCase& rc : random_cases(4242, 400)) {
    INFO(rc.text);
    const CaseData d = case_data(rc);
    Harness<double> reference(rc.config, rc.shape);  // for the conditioning only
    if (!run_case(reference, rc, d).empty()) continue;
    const ReferenceGroups groups = reference_groups(rc.config, rc.shape);
    auto both = [&](auto zero) {
      using T = decltype(zero);
      const double unit = sizeof(T) == 4 ? 1e-6 : 1e-14;
      const double rel = sizeof(T) == 4 ? 2e-5 : 1e-11;
      const auto scales = group_scales(reference, unit);
      std::vector<bool> ok;
      for (const auto& sc : scales) {
        ok.push_back(sc.comparable);
        (sc.comparable ? groups_compared : groups_skipped) += 1;
      }
      Harness<T> simd(rc.config, rc.shape), scalar(rc.config, rc.shape);
      scalar.execution.simd_path = SimdPath::scalar;
      const std::string refused_simd = run_case(simd, rc, d), refused_scalar = run_case(scalar, rc, d);
      if (!refused_simd.empty() || !refused_scalar.empty()) {  // (float only: double ran above)
        CHECK(refused_simd == refused_scalar);
        return;
      }
      INFO((sizeof(T) == 4 ? "float" : "double"));
      const auto& ls = simd.context.lambda;
      const auto& lv = scalar.context.lambda;
      compare_by_group(simd.out, scalar.out, groups, scales, ls, lv, rel, rel / 10, false, "output");
      compare_by_group(simd.grad_x, scalar.grad_x, groups, scales, ls, lv, 10 * rel, rel, true, "grad_x");
      if (std::all_of(ok.begin(), ok.end(), [](bool b) { return b; })) {
        compare_all(simd.grad_weight, scalar.grad_weight, 10 * rel, rel, "grad_weight");
        compare_all(simd.grad_bias, scalar.grad_bias, rel, rel / 10, "grad_bias");
        compare_all(simd.running_lambda, scalar.running_lambda, rel, rel / 10, "running_lambda");
        compare_all(simd.running_norm, scalar.running_norm, rel, rel / 10, "running_norm");
      }
      compare_all(simd.running_mean, scalar.running_mean, rel, rel / 10, "running_mean");
      compare_all(simd.running_var, scalar.running_var, rel, rel / 10, "running_var");
    };
    both(0.0f);
    both(0.0);
  }
  if (std::getenv("NORMNORM_PROPERTIES_VERBOSE")) WARN(groups_compared << " groups compared, " << groups_skipped << " skipped");
  INFO(groups_compared << " groups compared, " << groups_skipped << " skipped as ill-conditioned");
  CHECK(groups_skipped * 50 < groups_compared);
}

TEST_CASE("random configurations: bit-identical on 1, 2 and 3 threads and without a pool", "[properties][threads]") {
  Eigen::ThreadPool pool1(1), pool2(2), pool3(3);
  Eigen::ThreadPoolDevice device1(&pool1, 1), device2(&pool2, 2), device3(&pool3, 3);
  const Eigen::ThreadPoolDevice* devices[] = {&device1, &device2, &device3};
  for (const RandomCase& rc : random_cases(99, 100, /*big=*/true)) {
    INFO(rc.text);
    const CaseData d = case_data(rc);
    auto both = [&](auto zero) {
      using T = decltype(zero);
      for (bool simd : {true, false}) {
        Harness<T> serial(rc.config, rc.shape);
        serial.execution.simd_path = simd ? SimdPath::automatic : SimdPath::scalar;
        const std::string refused = run_case(serial, rc, d);
        for (int threads = 1; threads <= 3; ++threads) {
          INFO((sizeof(T) == 4 ? "float " : "double ") << (simd ? "SIMD " : "scalar ") << threads << " threads");
          Harness<T> threaded(rc.config, rc.shape);
          threaded.execution = Execution{simd ? SimdPath::automatic : SimdPath::scalar, devices[threads - 1]};
          CHECK(run_case(threaded, rc, d) == refused);
          CHECK(same_bits(threaded.out, serial.out));
          CHECK(same_bits(threaded.grad_x, serial.grad_x));
          CHECK(same_bits(threaded.grad_weight, serial.grad_weight));
          CHECK(same_bits(threaded.grad_bias, serial.grad_bias));
          CHECK(same_bits(threaded.running_mean, serial.running_mean));
          CHECK(same_bits(threaded.running_var, serial.running_var));
          CHECK(same_bits(threaded.running_lambda, serial.running_lambda));
          CHECK(same_bits(threaded.running_norm, serial.running_norm));
          CHECK(threaded.batches == serial.batches);
          CHECK(same_bits(threaded.context.lambda, serial.context.lambda));
        }
      }
    };
    both(0.0f);
    both(0.0);
  }
}
