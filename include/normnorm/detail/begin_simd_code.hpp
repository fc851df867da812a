// Included (no guard) at the top of every header whose functions run xsimd code;
// detail/end_simd_code.hpp closes it. g++ 12 reports its own AVX-512 intrinsics
// (set1, cvtepi32, srli, ...) as "may be used uninitialized" when they are
// inlined into our functions (GCC bug 105593, fixed in GCC 13): silence that
// one false positive there, so users building with -Wall see no noise.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
