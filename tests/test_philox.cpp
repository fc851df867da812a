// Philox4x32-10 must match Random123's philox4x32 bit for bit.
#include <catch2/catch.hpp>

#include <Random123/philox.h>

#include <cstddef>
#include <cstdint>
#include <random>

#include "normnorm/noise/philox.hpp"
#include "normnorm/noise/philox_simd.hpp"

namespace {

using normnorm::noise::philox4x32_10;
using normnorm::noise::PhiloxCounter;
using normnorm::noise::PhiloxKey;

PhiloxCounter random123_philox(const PhiloxCounter& counter, const PhiloxKey& key) {
  r123::Philox4x32 generator;
  const r123::Philox4x32::ctr_type r123_counter = {{counter[0], counter[1], counter[2], counter[3]}};
  const r123::Philox4x32::key_type r123_key = {{key[0], key[1]}};
  const r123::Philox4x32::ctr_type result = generator(r123_counter, r123_key);
  return {result[0], result[1], result[2], result[3]};
}

struct KnownAnswer {
  PhiloxCounter counter;
  PhiloxKey key;
  PhiloxCounter expected;
};

// Random123's published known-answer vectors for philox4x32 with 10 rounds.
const KnownAnswer kKnownAnswers[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u},
     {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    // Counter and key are the leading hex digits of pi.
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

// The generator is usable in constant expressions.
static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u, "constexpr Philox");

}  // namespace

TEST_CASE("philox4x32_10 reproduces the published known-answer vectors", "[noise]") {
  for (const KnownAnswer& answer : kKnownAnswers) {
    CHECK(philox4x32_10(answer.counter, answer.key) == answer.expected);
    CHECK(random123_philox(answer.counter, answer.key) == answer.expected);
  }
}

TEST_CASE("philox4x32_10 matches Random123 on single-bit inputs", "[noise]") {
  // Flipping one input bit at a time exercises every word of counter and key.
  for (int bit = 0; bit < 32; ++bit) {
    const std::uint32_t word = std::uint32_t{1} << bit;
    for (int position = 0; position < 6; ++position) {
      PhiloxCounter counter{};
      PhiloxKey key{};
      if (position < 4) {
        counter[static_cast<std::size_t>(position)] = word;
      } else {
        key[static_cast<std::size_t>(position - 4)] = word;
      }
      INFO("bit " << bit << ", position " << position);
      CHECK(philox4x32_10(counter, key) == random123_philox(counter, key));
    }
  }
}

TEST_CASE("philox4x32_10 matches Random123 on sequential counters", "[noise]") {
  const PhiloxKey key = {0x12345678u, 0x9abcdef0u};
  int mismatches = 0;
  for (std::uint32_t block = 0; block < 1000; ++block) {
    const PhiloxCounter counter = {block, 0u, 7u, 0u};
    mismatches += philox4x32_10(counter, key) != random123_philox(counter, key);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("philox4x32_10 matches Random123 on pseudo-random inputs", "[noise]") {
  std::mt19937 engine(20240601u);  // fixed seed: the test is deterministic
  const auto next_word = [&engine] { return static_cast<std::uint32_t>(engine()); };
  int mismatches = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    const PhiloxCounter counter = {next_word(), next_word(), next_word(), next_word()};
    const PhiloxKey key = {next_word(), next_word()};
    const bool same = philox4x32_10(counter, key) == random123_philox(counter, key);
    if (!same) {
      ++mismatches;
      UNSCOPED_INFO("mismatch at trial " << trial);
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("Philox across SIMD lanes is bit-identical to the scalar generator", "[noise]") {
  using A = xsimd::default_arch;
  using W = normnorm::noise::detail::Words<A>;
  constexpr std::size_t width = W::size;
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 500; ++trial) {
    alignas(64) std::uint32_t c[4][width];
    for (auto& word : c)
      for (auto& lane : word) lane = static_cast<std::uint32_t>(rng());
    const normnorm::noise::PhiloxKey key{static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())};
    W c0 = W::load_aligned(c[0]), c1 = W::load_aligned(c[1]), c2 = W::load_aligned(c[2]), c3 = W::load_aligned(c[3]);
    normnorm::noise::detail::philox4x32_10_lanes(c0, c1, c2, c3, key);
    alignas(64) std::uint32_t out[4][width];
    c0.store_aligned(out[0]), c1.store_aligned(out[1]), c2.store_aligned(out[2]), c3.store_aligned(out[3]);
    for (std::size_t l = 0; l < width; ++l) {
      const auto want = normnorm::noise::philox4x32_10({c[0][l], c[1][l], c[2][l], c[3][l]}, key);
      for (int w = 0; w < 4; ++w) REQUIRE(out[w][l] == want[static_cast<std::size_t>(w)]);
    }
  }
}
