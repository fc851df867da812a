// Reproducible standard-normal noise: determinism, layout independence and
// distribution quality.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "normnorm/noise/normal.hpp"
#include "normnorm/noise/philox.hpp"

namespace {

using normnorm::noise::fill_standard_normals;
using normnorm::noise::standard_normal;

constexpr std::uint64_t kSeed = 0x5EED0123456789ABull;
constexpr std::uint64_t kCall = 42;

std::vector<double> draw_doubles(std::uint64_t seed, std::uint64_t call, std::uint64_t first_index,
                                 std::size_t count) {
  std::vector<double> values(count);
  fill_standard_normals(seed, call, first_index, count, values.data());
  return values;
}

// The documented mapping, written out independently of normal.hpp, in double.
double reference_normal(std::uint64_t seed, std::uint64_t call, std::uint64_t index) {
  // Tiles of 64 indices: stream = (index % 64) / 16, lane = index % 16, block = 16 * (index / 64) + lane.
  const std::uint64_t block = index / 64 * 16 + index % 16;
  const std::size_t stream = static_cast<std::size_t>(index % 64 / 16);
  const normnorm::noise::PhiloxCounter words = normnorm::noise::philox4x32_10(
      {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
       static_cast<std::uint32_t>(call), static_cast<std::uint32_t>(call >> 32)},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  const std::size_t pair_start = stream < 2 ? 0 : 2;
  const double u_radius = ((words[pair_start] >> 9) + 0.5) / 8388608.0;
  const double u_angle = ((words[pair_start + 1] >> 9) + 0.5) / 8388608.0;
  const double radius = std::sqrt(-2.0 * std::log(u_radius));
  const double angle = 2.0 * 3.14159265358979323846 * u_angle;
  return radius * (stream % 2 == 0 ? std::cos(angle) : std::sin(angle));
}

}  // namespace

TEST_CASE("standard_normal follows the documented Philox/Box-Muller mapping", "[noise]") {
  const std::uint64_t indices[] = {0, 1, 2, 3, 4, 5, 6, 7, 1001, (1ull << 34) + 2, ~0ull};
  for (const std::uint64_t index : indices) {
    INFO("index " << index);
    // The generator evaluates Box-Muller in float: a few float ulps from the double mapping.
    const double want = reference_normal(kSeed, kCall, index);
    CHECK(std::abs(standard_normal(kSeed, kCall, index) - want) <= 2e-6 * (1.0 + std::abs(want)));
    CHECK(normnorm::noise::reference_standard_normal(kSeed, kCall, index) == want);
  }
}

TEST_CASE("the fast generator stays within float accuracy of the double mapping", "[noise]") {
  std::vector<float> fast(100000);
  fill_standard_normals(kSeed, kCall, 0, fast.size(), fast.data());
  double worst = 0;
  for (std::size_t k = 0; k < fast.size(); ++k) {
    const double want = reference_normal(kSeed, kCall, k);
    worst = std::max(worst, std::abs(fast[k] - want) / (1.0 + std::abs(want)));
  }
  CHECK(worst <= 2e-6);
}

TEST_CASE("fill_standard_normals equals standard_normal for unaligned starts and odd counts", "[noise]") {
  const std::uint64_t first_indices[] = {0, 1, 2, 3, 4, 5, 6, 7, 1021, (1ull << 33) + 3, (1ull << 62) - 3};
  const std::size_t counts[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 31, 100};
  for (const std::uint64_t first : first_indices) {
    for (const std::size_t count : counts) {
      // One extra slot holds a sentinel that must survive untouched.
      std::vector<double> out(count + 1, 12345.0);
      fill_standard_normals(kSeed, kCall, first, count, out.data());
      int mismatches = 0;
      for (std::size_t k = 0; k < count; ++k) {
        mismatches += out[k] != standard_normal(kSeed, kCall, first + k);
      }
      INFO("first_index " << first << ", count " << count);
      CHECK(mismatches == 0);
      CHECK(out[count] == 12345.0);
    }
  }
}

TEST_CASE("splitting a range into chunks gives identical values", "[noise]") {
  const std::uint64_t first = 17;  // deliberately not a multiple of 4
  const std::size_t total = 5000;
  const std::vector<double> whole = draw_doubles(kSeed, kCall, first, total);

  std::mt19937 engine(7u);  // fixed seed: deterministic chunking
  std::uniform_int_distribution<std::size_t> chunk_size(1, 23);
  for (int split = 0; split < 20; ++split) {
    std::vector<double> pieced(total);
    std::size_t done = 0;
    while (done < total) {
      const std::size_t chunk = std::min(chunk_size(engine), total - done);
      fill_standard_normals(kSeed, kCall, first + done, chunk, pieced.data() + done);
      done += chunk;
    }
    CHECK(pieced == whole);
  }
}

TEST_CASE("different seed, call or index block gives different values", "[noise]") {
  const std::size_t count = 64;
  const std::vector<double> base = draw_doubles(kSeed, kCall, 0, count);
  const auto count_equal = [&base](const std::vector<double>& other) {
    int equal = 0;
    for (std::size_t k = 0; k < base.size(); ++k) {
      equal += base[k] == other[k];
    }
    return equal;
  };
  // Changing either half of each 64-bit input must change the stream.
  CHECK(count_equal(draw_doubles(kSeed + 1, kCall, 0, count)) == 0);
  CHECK(count_equal(draw_doubles(kSeed ^ (1ull << 40), kCall, 0, count)) == 0);
  CHECK(count_equal(draw_doubles(kSeed, kCall + 1, 0, count)) == 0);
  CHECK(count_equal(draw_doubles(kSeed, kCall ^ (1ull << 40), 0, count)) == 0);
  CHECK(count_equal(draw_doubles(kSeed, kCall, 1ull << 34, count)) == 0);
  // And the same inputs must give the same stream.
  CHECK(count_equal(draw_doubles(kSeed, kCall, 0, count)) == static_cast<int>(count));
}

TEST_CASE("float output equals the double output cast to float", "[noise]") {
  const std::uint64_t first = 6;
  const std::size_t count = 1003;
  const std::vector<double> as_double = draw_doubles(kSeed, kCall, first, count);
  std::vector<float> as_float(count);
  fill_standard_normals(kSeed, kCall, first, count, as_float.data());
  int mismatches = 0;
  for (std::size_t k = 0; k < count; ++k) {
    mismatches += as_float[k] != static_cast<float>(as_double[k]);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("one million draws look standard normal", "[noise]") {
  const std::size_t n = 1000000;
  std::vector<double> x = draw_doubles(kSeed, kCall, 0, n);  // fixed seed: deterministic
  const double count = static_cast<double>(n);

  double sum = 0.0;
  for (const double v : x) sum += v;
  const double mean = sum / count;

  double m2 = 0.0, m3 = 0.0, m4 = 0.0, lag1 = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    const double d = x[k] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
    if (k + 1 < n) lag1 += d * (x[k + 1] - mean);
  }
  m2 /= count;
  m3 /= count;
  m4 /= count;
  const double variance = m2;
  const double skewness = m3 / std::pow(m2, 1.5);
  const double excess_kurtosis = m4 / (m2 * m2) - 3.0;
  const double lag1_correlation = lag1 / (count - 1.0) / m2;

  INFO("mean " << mean << ", variance " << variance << ", skewness " << skewness << ", excess kurtosis "
               << excess_kurtosis << ", lag-1 correlation " << lag1_correlation);
  // Tolerances are about 5 standard errors for n = 1e6 normal samples:
  // SE(mean) = 1/sqrt(n) = 1e-3, SE(var) = sqrt(2/n) = 1.4e-3,
  // SE(skew) = sqrt(6/n) = 2.4e-3, SE(kurt) = sqrt(24/n) = 4.9e-3,
  // SE(lag-1 correlation) = 1/sqrt(n) = 1e-3.
  CHECK(std::abs(mean) < 5e-3);
  CHECK(std::abs(variance - 1.0) < 1e-2);
  CHECK(std::abs(skewness) < 1.25e-2);
  CHECK(std::abs(excess_kurtosis) < 2.5e-2);
  // Neighbours share a Box-Muller pair or a Philox block; they must still be uncorrelated.
  CHECK(std::abs(lag1_correlation) < 5e-3);

  // Kolmogorov-Smirnov distance to the standard normal CDF.
  std::sort(x.begin(), x.end());
  double ks_statistic = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    const double cdf = 0.5 * std::erfc(-x[k] / std::sqrt(2.0));
    const double below = static_cast<double>(k) / count;
    const double above = static_cast<double>(k + 1) / count;
    ks_statistic = std::max({ks_statistic, cdf - below, above - cdf});
  }
  const double critical_1_percent = 1.63 / std::sqrt(count);
  INFO("KS statistic " << ks_statistic << ", 1% critical value " << critical_1_percent);
  CHECK(ks_statistic < critical_1_percent);
}
