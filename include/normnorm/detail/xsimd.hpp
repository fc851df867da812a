#pragma once
// xsimd, included the one way normnorm includes it. g++ 12 reports the AVX-512
// intrinsics (_mm512_srai_epi64, _mm512_cvtepi32_ps, ...) that xsimd's own kernels
// (log1p, fast_cast, ...) inline as using an uninitialized value (GCC bug 105593,
// fixed in GCC 13). Those functions are xsimd's, not ours, so the pragmas of
// detail/begin_simd_code.hpp do not reach them; the warning follows the state at
// the intrinsics' text, so it is switched off around the include that brings it in.
// Only for this include: the user's own code keeps every warning.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
