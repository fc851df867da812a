// Golden parity: every case in tests/data/golden, computed in float64 by the
// paper's PyTorch code (the 1-D/3-D forms' cases, which it has no code for, by
// tests/golden_ranks/make_cases.py from the spec), replayed in both dtypes on both
// the SIMD and the scalar path.

#include <catch2/catch.hpp>

#include <filesystem>

#include "conformance/golden_case.hpp"

#ifndef NORMNORM_TEST_DATA_DIR
#define NORMNORM_TEST_DATA_DIR "tests/data"
#endif

namespace {

std::vector<std::filesystem::path> golden_cases() {
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(NORMNORM_TEST_DATA_DIR) + "/golden"))
    if (entry.is_directory()) cases.push_back(entry.path());
  std::sort(cases.begin(), cases.end());
  return cases;
}

}  // namespace

TEMPLATE_TEST_CASE("every golden case matches the paper's code", "[golden]", float, double) {
  const auto cases = golden_cases();
  REQUIRE(cases.size() >= 17);
  const bool simd = GENERATE(true, false);
  for (const auto& dir : cases) {
    const auto result = normnorm::test::replay_case<TestType>(dir, "", normnorm::Execution{simd ? normnorm::SimdPath::automatic : normnorm::SimdPath::scalar});
    INFO((simd ? "simd " : "scalar ") << normnorm::test::describe(result, sizeof(TestType) == 4 ? "float" : "double"));
    CHECK(result.tensors.size() >= 6);  // outputs and gradients at least
    CHECK(result.pass());
  }
}

TEST_CASE("a golden comparison can fail", "[golden]") {
  // The comparison itself must be able to say no: perturb one value.
  const std::vector<double> want{1.0, 2.0, 3.0};
  std::vector<double> got = want;
  CHECK(normnorm::test::compare("t", got, want, normnorm::test::tolerance_for<double>()).pass);
  got[1] += 1e-6;
  CHECK_FALSE(normnorm::test::compare("t", got, want, normnorm::test::tolerance_for<double>()).pass);
}
