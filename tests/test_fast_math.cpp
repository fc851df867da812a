// Checks the claims documented in include/normnorm/math/fast_math.hpp: for each
// function and lane type, a table of input ranges with the maximum error (in
// ulp of the exact result) stated there, sampled densely (2^16 log-spaced +
// 2^14 uniform points per range, plus points next to the range-reduction
// boundaries) against std::log1p / std::expm1 in long double; special values;
// and agreement of the scalar path with the SIMD path on the same inputs.
//
// How the numbers in the table were obtained (scratch programs, not part of
// the build): the polynomial coefficients come from a weighted Remez exchange
// written in Python's decimal module (60 digits); the measured maxima come from
// an exhaustive run over every float (both functions) and from 3e7 random +
// boundary samples per range for double, all against log1pl / expm1l, each in
// a build that fuses multiply-adds (GCC -march=native) and one that does not
// (SSE2; clang -march=native rounds the same way).

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "normnorm/math/fast_math.hpp"

namespace {

using normnorm::math::expm1_fast;
using normnorm::math::log1p_nonneg;

// One row of a claim table: inputs in [lo, hi] (and in [-hi, -lo] too when
// both_signs) have at most max_ulp error. Rows do not overlap.
struct RangeClaim {
  double lo, hi, max_ulp;
  bool both_signs;
};

// ---- The documented claims (keep in sync with fast_math.hpp) ---------------
template <class T> struct Claims;
// Bounds = measured maximum (worst of the FMA and the no-FMA build, see
// fast_math.hpp) rounded up to the next 0.05 ulp, and never below 0.5.
template <> struct Claims<float> {
  // Measured (exhaustive): 0, 0.06, 0.501, 0.956, 0.631, 0.524.
  static std::vector<RangeClaim> log1p() {
    return {{0, 1e-30, 0.5, false},  {1e-30, 1e-8, 0.5, false}, {1e-8, 1e-3, 0.55, false},
            {1e-3, 1, 1.0, false},   {1, 1e4, 0.65, false},     {1e4, 3.4028234663852886e38, 0.55, false}};
  }
  // Measured (exhaustive), |t| in each range: 0, 0.501, 1.193, 1.315, 1.164, 0.869.
  static std::vector<RangeClaim> expm1() {
    return {{0, 1e-30, 0.5, true},  {1e-30, 1e-3, 0.55, true}, {1e-3, 1, 1.2, true},
            {1, 20, 1.35, true},    {20, 88, 1.2, true},       {88, 3.4028234663852886e38, 0.9, true}};
  }
};
template <> struct Claims<double> {
  // Measured (3e7 samples per range): 0, 0.500, 0.501, 0.944, 0.634, 0.511.
  static std::vector<RangeClaim> log1p() {
    return {{0, 1e-30, 0.5, false},  {1e-30, 1e-8, 0.55, false}, {1e-8, 1e-3, 0.55, false},
            {1e-3, 1, 1.0, false},   {1, 1e4, 0.7, false},       {1e4, 1.7976931348623157e308, 0.55, false}};
  }
  // Measured (3e7 samples per range), |t| in each range: 0, 0.501, 1.083, 0.726, 0.707, 0.659.
  static std::vector<RangeClaim> expm1() {
    return {{0, 1e-30, 0.5, true},  {1e-30, 1e-3, 0.55, true}, {1e-3, 1, 1.15, true},
            {1, 20, 0.8, true},     {20, 700, 0.75, true},     {700, 1.7976931348623157e308, 0.7, true}};
  }
};

// ---- Helpers -----------------------------------------------------------------
template <class T> long double ulp_of(long double exact) {
  int e = 0;
  if (exact == 0) return std::numeric_limits<T>::denorm_min();
  std::frexp(std::fabs(exact), &e);  // |exact| in [2^(e-1), 2^e)
  e = std::max(e, std::numeric_limits<T>::min_exponent);
  return std::ldexp(1.0L, e - std::numeric_limits<T>::digits);
}

// Error of y in ulp of the exact value; results beyond the format's range
// count as exact when y is +-Inf (the rounding overflowed) and are measured
// against the largest finite value otherwise.
template <class T> long double ulp_error(T y, long double exact) {
  const long double max = std::numeric_limits<T>::max();
  if (std::fabs(exact) > max) {
    if (std::isinf(y) && ((y > 0) == (exact > 0))) return 0;
    return std::fabs(static_cast<long double>(y) - exact) / ulp_of<T>(max);
  }
  if (std::isinf(y)) return std::numeric_limits<long double>::infinity();
  return std::fabs(static_cast<long double>(y) - exact) / ulp_of<T>(exact);
}

template <class T> bool same_bits(T a, T b) { return std::memcmp(&a, &b, sizeof(T)) == 0; }

// Applies f to every element of xs with the SIMD path (full batches, then the
// scalar tail), and separately with the scalar path.
template <class T, class F>
void evaluate(const std::vector<T>& xs, F f, std::vector<T>& simd, std::vector<T>& scalar) {
  using B = xsimd::batch<T>;
  const std::size_t n = xs.size();
  simd.resize(n);
  scalar.resize(n);
  std::vector<T> padded(xs);
  padded.resize((n + B::size - 1) / B::size * B::size, T(0));
  std::vector<T> out(padded.size());
  for (std::size_t i = 0; i < padded.size(); i += B::size) f(B::load_unaligned(&padded[i])).store_unaligned(&out[i]);
  for (std::size_t i = 0; i < n; ++i) {
    simd[i] = out[i];
    scalar[i] = f(xs[i]);
  }
}

// Inputs for one range: 2^16 log-spaced magnitudes (both signs when the range
// straddles 0), 2^14 uniform points, the end points, and points next to the
// range-reduction boundaries that fall inside.
template <class T>
std::vector<T> sample_range(const RangeClaim& claim, bool is_log1p, std::uint64_t seed) {
  std::vector<T> xs;
  const double lo = claim.lo, hi = claim.hi;  // 0 <= lo < hi
  const double max = static_cast<double>(std::numeric_limits<T>::max());
  auto push_one = [&](double x) {
    if (std::fabs(x) > max) return;
    const T t = static_cast<T>(x);
    const double m = std::fabs(static_cast<double>(t));
    if (m >= lo && m <= hi && (claim.both_signs || t >= 0)) xs.push_back(t);
  };
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int flip = 0;
  auto push = [&](double x) { push_one(claim.both_signs && (flip++ & 1) ? -x : x); };
  const double amin = lo == 0 ? static_cast<double>(std::numeric_limits<T>::denorm_min()) : lo;
  const int n_log = 1 << 16;
  for (int i = 0; i < n_log; ++i) push(std::exp(std::log(amin) + (std::log(hi) - std::log(amin)) * i / (n_log - 1)));
  for (int i = 0; i < (1 << 14); ++i) push(lo + (hi - lo) * unit(rng));
  for (double x : {lo, hi}) {
    push_one(x);
    if (claim.both_signs) push_one(-x);
  }
  // Reduction boundaries: 1 + a = 1.5 * 2^k (log1p), t = (k + 1/2) ln 2 (expm1).
  for (int i = 0; i < (1 << 12); ++i) {
    const double wiggle = 1.0 + (unit(rng) - 0.5) * 64 * std::numeric_limits<T>::epsilon();
    if (is_log1p) {
      const int k = static_cast<int>(unit(rng) * std::numeric_limits<T>::max_exponent);
      push_one((std::ldexp(1.5, k) - 1.0) * wiggle);
    } else {
      const int k = static_cast<int>(std::floor(unit(rng) * 2 * std::numeric_limits<T>::max_exponent)) -
                    std::numeric_limits<T>::max_exponent;
      push_one((k + 0.5) * 0.69314718055994530942 * wiggle);
    }
  }
  return xs;
}

template <class T, class F, class Ref>
void check_claims(const std::vector<RangeClaim>& table, F f, Ref ref, bool is_log1p) {
  std::uint64_t seed = 1;
  for (const RangeClaim& claim : table) {
    const std::vector<T> xs = sample_range<T>(claim, is_log1p, seed++);
    std::vector<T> simd, scalar;
    evaluate(xs, f, simd, scalar);
    long double worst = 0, worst_gap = 0;
    T worst_x = 0, worst_gap_x = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const long double exact = ref(static_cast<long double>(xs[i]));
      const long double err = ulp_error<T>(simd[i], exact);
      if (!(err <= worst)) { worst = err; worst_x = xs[i]; }
      // Scalar and SIMD run the same algorithm: they agree within the claim.
      if (!same_bits(scalar[i], simd[i])) {
        const long double gap = std::isinf(scalar[i]) || std::isinf(simd[i])
                                    ? (scalar[i] == simd[i] ? 0 : ulp_error<T>(scalar[i], exact))
                                    : std::fabs(static_cast<long double>(scalar[i]) - simd[i]) / ulp_of<T>(exact);
        if (!(gap <= worst_gap)) { worst_gap = gap; worst_gap_x = xs[i]; }
      }
    }
    INFO("range " << (claim.both_signs ? "+-" : "") << "[" << claim.lo << ", " << claim.hi << "], " << xs.size() << " points, claimed " << claim.max_ulp
                   << " ulp; worst " << static_cast<double>(worst) << " ulp at " << worst_x
                   << "; worst scalar/SIMD gap " << static_cast<double>(worst_gap) << " ulp at " << worst_gap_x);
    CHECK(xs.size() > 1000);
    CHECK(worst <= claim.max_ulp);
    CHECK(worst_gap <= claim.max_ulp);
  }
}

template <class T> T via_simd_log1p(T x) { return log1p_nonneg(xsimd::batch<T>(x)).get(0); }
template <class T> T via_simd_expm1(T x) { return expm1_fast(xsimd::batch<T>(x)).get(0); }

}  // namespace

TEMPLATE_TEST_CASE("log1p_nonneg meets its documented ulp bounds", "[math]", float, double) {
  check_claims<TestType>(
      Claims<TestType>::log1p(), [](const auto& v) { return log1p_nonneg(v); },
      [](long double x) { return std::log1p(x); }, true);
}

TEMPLATE_TEST_CASE("expm1_fast meets its documented ulp bounds", "[math]", float, double) {
  check_claims<TestType>(
      Claims<TestType>::expm1(), [](const auto& v) { return expm1_fast(v); },
      [](long double x) { return std::expm1(x); }, false);
}

TEMPLATE_TEST_CASE("log1p_nonneg special values", "[math]", float, double) {
  using T = TestType;
  using L = std::numeric_limits<T>;
  for (int path = 0; path < 2; ++path) {
    auto f = [&](T x) { return path == 0 ? log1p_nonneg(x) : via_simd_log1p(x); };
    INFO("path " << (path == 0 ? "scalar" : "SIMD"));
    CHECK(same_bits(f(T(0)), T(0)));
    CHECK(same_bits(f(-T(0)), -T(0)));
    CHECK(same_bits(f(L::denorm_min()), L::denorm_min()));   // subnormals: log1p(a) = a
    CHECK(same_bits(f(L::min() / 2), L::min() / 2));
    CHECK(same_bits(f(L::min()), L::min()));
    CHECK(same_bits(f(L::epsilon() / 4), L::epsilon() / 4));  // 1 + a rounds to 1, result is a
    CHECK(f(L::infinity()) == L::infinity());
    CHECK(std::isnan(f(L::quiet_NaN())));
    CHECK(std::isnan(f(-L::quiet_NaN())));                    // x86's default NaN has the sign bit set
    const T big = f(L::max());
    CHECK(std::isfinite(big));
    CHECK(ulp_error<T>(big, std::log1p(static_cast<long double>(L::max()))) <= 0.55);
    CHECK(f(T(1)) == Approx(std::log(2.0)).epsilon(2 * L::epsilon()));
  }
}

TEMPLATE_TEST_CASE("expm1_fast special values and saturation", "[math]", float, double) {
  using T = TestType;
  using L = std::numeric_limits<T>;
  // ln(max): expm1 overflows above it. -(p + 1) ln 2 and below: the result rounds to -1.
  const long double overflow_at = std::log(static_cast<long double>(L::max()));
  for (int path = 0; path < 2; ++path) {
    auto f = [&](T x) { return path == 0 ? expm1_fast(x) : via_simd_expm1(x); };
    INFO("path " << (path == 0 ? "scalar" : "SIMD"));
    CHECK(same_bits(f(T(0)), T(0)));
    CHECK(same_bits(f(-T(0)), -T(0)));
    CHECK(std::isnan(f(L::quiet_NaN())));
    CHECK(std::isnan(f(-L::quiet_NaN())));
    CHECK(f(L::infinity()) == L::infinity());
    CHECK(f(-L::infinity()) == T(-1));
    CHECK(f(L::max()) == L::infinity());
    CHECK(f(L::lowest()) == T(-1));
    CHECK(f(T(-1e4)) == T(-1));
    CHECK(f(T(-L::digits - 2) * T(0.6931471805599453)) == T(-1));
    // Tiny and subnormal t: expm1(t) = t exactly (t^2 / 2 is below half an ulp).
    for (T t : {T(1e-30), T(-1e-30), L::epsilon() / 8, -L::epsilon() / 8, L::min(), -L::min(),
                L::denorm_min(), -L::denorm_min(), L::min() / 3, -L::min() / 3, L::min() / 2}) {
      CHECK(same_bits(f(t), t));
    }
    // Around the overflow threshold, value by value (2000 either side): Inf
    // once the exact value is beyond max (+ half an ulp), finite and within
    // 1 ulp below it.
    T t = static_cast<T>(overflow_at);
    for (int i = 0; i < 2000; ++i) t = std::nextafter(t, T(0));
    int n_finite = 0, n_inf = 0;
    for (int i = 0; i < 4000; ++i, t = std::nextafter(t, L::infinity())) {
      const long double exact = std::expm1(static_cast<long double>(t));
      const T y = f(t);
      if (exact > static_cast<long double>(L::max()) * (1 + L::epsilon())) {
        CHECK(y == L::infinity());
        ++n_inf;
      } else if (exact < static_cast<long double>(L::max()) * (1 - L::epsilon())) {
        CHECK(std::isfinite(y));
        CHECK(ulp_error<T>(y, exact) <= 1.0);
        ++n_finite;
      }
    }
    CHECK(n_finite > 10);
    CHECK(n_inf > 10);
  }
}

TEMPLATE_TEST_CASE("fast_math scalar and SIMD paths agree lane by lane", "[math]", float, double) {
  // The same inputs through full batches (every lane position) and through the
  // scalar path: special values must match exactly, finite values within the
  // smallest claim of 0.5 ulp (they are bit-identical on x86 builds).
  using T = TestType;
  using L = std::numeric_limits<T>;
  using B = xsimd::batch<T>;
  std::vector<T> xs = {T(0),        -T(0),         L::denorm_min(), L::min(),   T(1e-20),    T(0.25),
                       T(0.5),      T(0.75),       T(1),            T(1.5),     T(2),        T(3),
                       T(10),       T(700),        T(1e4),          L::max(),   L::infinity(), L::quiet_NaN(),
                       T(-0.25),    T(-1),         T(-20),          T(-60),     T(60),       T(88.5),
                       T(-1e-20),   -L::infinity(), L::lowest(),    T(0.3465),  T(-0.3466),  T(40)};
  while (xs.size() % B::size != 0) xs.push_back(T(0.125));
  for (std::size_t rotate = 0; rotate < B::size; ++rotate) {
    std::vector<T> simd_l(xs.size()), simd_e(xs.size());
    for (std::size_t i = 0; i < xs.size(); i += B::size) {
      const B v = B::load_unaligned(&xs[i]);
      log1p_nonneg(v).store_unaligned(&simd_l[i]);
      expm1_fast(v).store_unaligned(&simd_e[i]);
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const T x = xs[i];
      INFO("x = " << x);
      if (!(x < 0)) {  // log1p_nonneg's domain
        const T s = log1p_nonneg(x);
        if (std::isnan(s) || std::isinf(s) || s == 0) CHECK((same_bits(s, simd_l[i]) || (std::isnan(s) && std::isnan(simd_l[i]))));
        else CHECK(std::fabs(static_cast<long double>(s) - simd_l[i]) <= 0.5L * ulp_of<T>(std::log1p(static_cast<long double>(x))));
      }
      const T s = expm1_fast(x);
      if (std::isnan(s) || std::isinf(s) || s == 0 || s == T(-1)) CHECK((same_bits(s, simd_e[i]) || (std::isnan(s) && std::isnan(simd_e[i]))));
      else CHECK(std::fabs(static_cast<long double>(s) - simd_e[i]) <= 0.5L * ulp_of<T>(std::expm1(static_cast<long double>(x))));
    }
    std::rotate(xs.begin(), xs.begin() + 1, xs.end());
  }
}
