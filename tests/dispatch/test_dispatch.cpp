// Runtime SIMD dispatch (engine/dispatch.hpp): this binary is built for baseline
// x86-64 and given the SSE2, AVX2 and AVX-512 kernels by
// normnorm_add_simd_dispatch() (tests/CMakeLists.txt). Each target this CPU runs
// is checked against the scalar path; automatic must pick the best of them.

#include <string>

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "path_comparison.hpp"

using namespace normnorm;
using namespace normnorm::test;

namespace {

bool has_path(SimdPath path) {
  for (const SimdPathInfo& info : available_simd_paths())
    if (info.path == path) return true;
  return false;
}

}  // namespace

TEST_CASE("The dispatch targets are built in and the CPU's best is chosen", "[dispatch]") {
  REQUIRE(engine::simd_dispatch_built);
  const auto cpu = xsimd::available_architectures();
  CHECK(std::string(resolved_simd_arch(SimdPath::native)) == xsimd::default_arch::name());
  CHECK(std::string(resolved_simd_arch(SimdPath::sse2)) == "sse2");
  CHECK(has_path(SimdPath::avx2) == bool(cpu.fma3_avx2));
  CHECK(has_path(SimdPath::avx512) == bool(cpu.avx512bw));
  if (cpu.fma3_avx2) CHECK(std::string(resolved_simd_arch(SimdPath::avx2)) == xsimd::fma3<xsimd::avx2>::name());
  if (cpu.avx512bw) CHECK(std::string(resolved_simd_arch(SimdPath::avx512)) == "avx512bw");
  const std::string automatic = resolved_simd_arch();
  if (cpu.avx512bw) CHECK(automatic == "avx512bw");
  else if (cpu.fma3_avx2) CHECK(automatic == xsimd::fma3<xsimd::avx2>::name());
  else CHECK(automatic == "sse2");
  INFO("automatic runs " << automatic);
  SUCCEED();
}

TEMPLATE_TEST_CASE("Every dispatch target agrees with the scalar path", "[dispatch]", float, double) {
  for (SimdPath path : {SimdPath::sse2, SimdPath::avx2, SimdPath::avx512, SimdPath::automatic}) {
    if (path != SimdPath::automatic && !has_path(path)) {
      WARN("this CPU cannot run the " << to_string(path) << " path: not tested here");
      continue;
    }
    compare_path_with_scalar<TestType>(path);
  }
}

TEST_CASE("A dispatch target the CPU lacks is refused, nothing written", "[dispatch]") {
  for (SimdPath path : {SimdPath::avx2, SimdPath::avx512}) {
    if (has_path(path)) continue;
    Harness<float> layer(LayerConfig::batch_normal_norm_1d(3), Shape{4, 3});
    layer.randomize(1);
    layer.execution.simd_path = path;
    const auto before = layer.out;
    CHECK_THROWS_WITH(layer.forward(Mode::eval), Catch::Contains("not supported by this CPU"));
    CHECK(layer.out == before);
  }
}

TEST_CASE("Each dispatch target's noise matches the scalar path's within a few float ulps", "[dispatch][noise]") {
  constexpr std::size_t count = 1 << 16;
  std::vector<float> reference(count), draws(count);
  const auto noise = NoiseSource<float>::philox(7, 3);
  engine::kernels_for(SimdPath::scalar)->f32.fill_noise(noise, 5, index_t(count), reference.data());
  for (const SimdPathInfo& info : available_simd_paths()) {
    engine::kernels_for(info.path)->f32.fill_noise(noise, 5, index_t(count), draws.data());
    double worst_ulps = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const float ulp = std::nextafter(std::abs(reference[i]), INFINITY) - std::abs(reference[i]);
      worst_ulps = std::max(worst_ulps, double(std::abs(draws[i] - reference[i])) / double(ulp));
    }
    INFO(to_string(info.path) << " (" << info.arch_name << "): worst " << worst_ulps << " ulps over " << count << " draws");
    CHECK(worst_ulps <= 8);
  }
}
