#pragma once
// Philox4x32-10 across SIMD lanes: lane l computes the block of counter l,
// bit-identical to the scalar philox4x32_10 (tests/test_philox.cpp checks it).
// xsimd 8.1 has no widening 32-bit multiply, so mul_hi_lo uses the x86
// mul_epu32 instructions (even lanes, then odd lanes) and falls back to a
// lane loop elsewhere.

#include <cstdint>
#include <type_traits>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/noise/philox.hpp"

#include "normnorm/detail/begin_simd_code.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::noise {
NORMNORM_TARGET_NAMESPACE_BEGIN
namespace detail {

template <class A>
using Words = xsimd::batch<std::uint32_t, A>;

// hi and lo 32 bits of a * m for every lane.
template <class A>
inline void mul_hi_lo(const Words<A>& a, std::uint32_t m, Words<A>& hi, Words<A>& lo) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A>) {
    const __m512i va = a, vm = _mm512_set1_epi32(static_cast<int>(m));
    const __m512i even = _mm512_mul_epu32(va, vm);                         // lanes 0, 2, 4, ...
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(va, 32), vm);  // lanes 1, 3, 5, ...
    // Odd 32-bit lanes from `odd`, even ones from `even` (shifted into place): one blend each.
    hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, A>) {
    const __m256i va = a, vm = _mm256_set1_epi32(static_cast<int>(m));
    const __m256i even = _mm256_mul_epu32(va, vm);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(va, 32), vm);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    return;
  }
#endif
#if defined(__SSE2__)
  if constexpr (std::is_base_of_v<xsimd::sse2, A>) {
    const __m128i va = a, vm = _mm_set1_epi32(static_cast<int>(m));
    const __m128i even = _mm_mul_epu32(va, vm);
    const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(va, 32), vm);
    const __m128i low_half = _mm_set1_epi64x(0xFFFFFFFFll);
    hi = _mm_or_si128(_mm_srli_epi64(even, 32), _mm_andnot_si128(low_half, odd));
    lo = _mm_or_si128(_mm_and_si128(even, low_half), _mm_slli_epi64(odd, 32));
    return;
  }
#endif
  alignas(64) std::uint32_t lanes[Words<A>::size], his[Words<A>::size], los[Words<A>::size];
  a.store_aligned(lanes);
  for (std::size_t l = 0; l < Words<A>::size; ++l) {
    const std::uint64_t product = std::uint64_t{lanes[l]} * m;
    his[l] = static_cast<std::uint32_t>(product >> 32);
    los[l] = static_cast<std::uint32_t>(product);
  }
  hi = Words<A>::load_aligned(his);
  lo = Words<A>::load_aligned(los);
}

// Ten Philox rounds on Words<A>::size counters at once; c0..c3 become the output words.
template <class A>
inline void philox4x32_10_lanes(Words<A>& c0, Words<A>& c1, Words<A>& c2, Words<A>& c3, PhiloxKey key) noexcept {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    Words<A> hi0(0u), lo0(0u), hi1(0u), lo1(0u);  // initialized: g++ 12 warns otherwise
    mul_hi_lo(c0, kPhiloxMultiplier0, hi0, lo0);
    mul_hi_lo(c2, kPhiloxMultiplier1, hi1, lo1);
    const Words<A> next0 = hi1 ^ c1 ^ Words<A>(key[0]);
    const Words<A> next2 = hi0 ^ c3 ^ Words<A>(key[1]);
    c0 = next0;
    c1 = lo1;
    c2 = next2;
    c3 = lo0;
    key[0] += kPhiloxKeyBump0;
    key[1] += kPhiloxKeyBump1;
  }
}

// The same on two independent sets of counters, round by round: each round's
// instructions for both sets sit next to each other, so the core overlaps the two
// chains of ten rounds (and the previous sets' Box-Muller) instead of waiting on
// one. Each set's words are those of philox4x32_10_lanes.
template <class A>
inline void philox4x32_10_lanes_pair(Words<A> (&a)[4], Words<A> (&b)[4], PhiloxKey key) noexcept {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    Words<A> hi0a(0u), lo0a(0u), hi1a(0u), lo1a(0u), hi0b(0u), lo0b(0u), hi1b(0u), lo1b(0u);
    mul_hi_lo(a[0], kPhiloxMultiplier0, hi0a, lo0a);
    mul_hi_lo(b[0], kPhiloxMultiplier0, hi0b, lo0b);
    mul_hi_lo(a[2], kPhiloxMultiplier1, hi1a, lo1a);
    mul_hi_lo(b[2], kPhiloxMultiplier1, hi1b, lo1b);
    const Words<A> key0(key[0]), key1(key[1]);
    const Words<A> next0a = hi1a ^ a[1] ^ key0, next0b = hi1b ^ b[1] ^ key0;
    const Words<A> next2a = hi0a ^ a[3] ^ key1, next2b = hi0b ^ b[3] ^ key1;
    a[0] = next0a;
    b[0] = next0b;
    a[1] = lo1a;
    b[1] = lo1b;
    a[2] = next2a;
    b[2] = next2b;
    a[3] = lo0a;
    b[3] = lo0b;
    key[0] += kPhiloxKeyBump0;
    key[1] += kPhiloxKeyBump1;
  }
}

}  // namespace detail
NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::noise

#include "normnorm/detail/end_simd_code.hpp"
