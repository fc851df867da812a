// Test helper for the inference example's ctest: compares two .npy files.
//
//   normnorm_npy_allclose ACTUAL.npy EXPECTED.npy TOLERANCE
//
// Exits 0 when both have the same shape and max |actual - expected| <= TOLERANCE
// (and neither holds a NaN), 1 otherwise; prints the largest difference either way.

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

#include <normnorm/io/npy.hpp>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s ACTUAL.npy EXPECTED.npy TOLERANCE\n", argv[0]);
    return 2;
  }
  try {
    const normnorm::io::NpyArray actual = normnorm::io::read_npy(argv[1]);
    const normnorm::io::NpyArray expected = normnorm::io::read_npy(argv[2]);
    const double tolerance = std::stod(argv[3]);
    if (actual.shape != expected.shape) {
      std::printf("shape mismatch: %s has %zu axes / %lld values, %s has %zu axes / %lld values\n", argv[1],
                  actual.shape.size(), static_cast<long long>(actual.size()), argv[2], expected.shape.size(),
                  static_cast<long long>(expected.size()));
      return 1;
    }
    double worst = 0;
    std::size_t worst_index = 0;
    for (std::size_t i = 0; i < actual.data.size(); ++i) {
      const double difference = std::fabs(actual.data[i] - expected.data[i]);
      if (!(difference <= worst)) {  // also catches NaN
        worst = std::isnan(difference) ? INFINITY : difference;
        worst_index = i;
      }
    }
    const bool ok = worst <= tolerance;
    std::printf("%s: max |actual - expected| = %.3g at flat index %zu over %zu values (tolerance %.3g)\n",
                ok ? "ok" : "FAIL", worst, worst_index, actual.data.size(), tolerance);
    return ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "normnorm_npy_allclose: error: %s\n", error.what());
    return 2;
  }
}
