// Philox4x32-10 counter-based random number generator (Salmon et al.,
// "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11).
//
// Output is bit-identical to Random123's philox4x32 with 10 rounds, so a
// (counter, key) pair names one fixed block of 4 random words: no state, and
// any element of a stream can be computed independently of the others.
#pragma once

#include <array>
#include <cstdint>
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::noise {
NORMNORM_TARGET_NAMESPACE_BEGIN

using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;

namespace detail {

// Multipliers chosen by the Philox authors for good avalanche: after 10
// rounds every output bit depends on every input bit (passes BigCrush).
inline constexpr std::uint32_t kPhiloxMultiplier0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxMultiplier1 = 0xCD9E8D57u;

// Weyl-sequence key bumps between rounds: the golden ratio and sqrt(3) - 1
// in 32-bit fixed point, so each round sees a different round key.
inline constexpr std::uint32_t kPhiloxKeyBump0 = 0x9E3779B9u;
inline constexpr std::uint32_t kPhiloxKeyBump1 = 0xBB67AE85u;

inline constexpr int kPhiloxRounds = 10;

struct MulHiLo {
  std::uint32_t hi;
  std::uint32_t lo;
};

// Full 32x32 -> 64-bit product, split into its high and low words.
constexpr MulHiLo mul_hi_lo(std::uint32_t a, std::uint32_t b) noexcept {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  return {static_cast<std::uint32_t>(product >> 32), static_cast<std::uint32_t>(product)};
}

constexpr PhiloxCounter philox_round(const PhiloxCounter& ctr, const PhiloxKey& key) noexcept {
  const MulHiLo p0 = mul_hi_lo(kPhiloxMultiplier0, ctr[0]);
  const MulHiLo p1 = mul_hi_lo(kPhiloxMultiplier1, ctr[2]);
  return {p1.hi ^ ctr[1] ^ key[0], p1.lo, p0.hi ^ ctr[3] ^ key[1], p0.lo};
}

}  // namespace detail

// One Philox4x32-10 block: 4 random 32-bit words for (counter, key).
constexpr PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) noexcept {
  for (int round = 0; round < detail::kPhiloxRounds; ++round) {
    if (round > 0) {  // the first round uses the user key unchanged
      key[0] += detail::kPhiloxKeyBump0;
      key[1] += detail::kPhiloxKeyBump1;
    }
    counter = detail::philox_round(counter, key);
  }
  return counter;
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::noise
