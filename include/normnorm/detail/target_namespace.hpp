#pragma once
// One set of symbols per instruction set. Everything normnorm compiles per
// instruction set (the kernels, the math they inline, the code that calls them)
// lives in an inline namespace named after the translation unit's target:
//
//   namespace normnorm::math { NORMNORM_TARGET_NAMESPACE_BEGIN ... NORMNORM_TARGET_NAMESPACE_END }
//
// Inline functions are emitted in every translation unit that uses them, and
// the linker keeps one copy per name. Without distinct names, a program holding
// kernels built with different -m flags (normnorm_add_simd_dispatch's SSE2,
// AVX2 and AVX-512 sources, or its own translation units built with different
// flags) would run whichever copy the link order, a static archive or LTO
// happened to keep: AVX2 instructions on the SSE2 path, or the AVX2 path's
// scalar code without its FMA. Calls read the same either way (the namespace is
// inline); only the linker names differ.
//
// The dispatch sources (cmake/normnorm_dispatch.cmake) define
// NORMNORM_TARGET_NAMESPACE as dispatch_sse2, dispatch_avx2 or dispatch_avx512.
// Every other translation unit gets a name spelled from its instruction-set
// macros, so translation units built with different flags get different names.
// Types that cross translation units (SavedContext, LambdaTrace, Layout,
// Options, the engine's requests and kernel tables) stay outside: a type must be
// one type in the whole program.

#if !defined(NORMNORM_TARGET_NAMESPACE)

#define NORMNORM_TARGET_PASTE(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q) \
  a##b##c##d##e##f##g##h##i##j##k##l##m##n##o##p##q
#define NORMNORM_TARGET_NAME(...) NORMNORM_TARGET_PASTE(__VA_ARGS__)

// Each feature macro is a suffix (_avx2) or nothing.
#if defined(__SSE2__) || defined(_M_X64)
#define NORMNORM_TARGET_HAS_SSE2 _sse2
#else
#define NORMNORM_TARGET_HAS_SSE2
#endif
#if defined(__SSE3__)
#define NORMNORM_TARGET_HAS_SSE3 _sse3
#else
#define NORMNORM_TARGET_HAS_SSE3
#endif
#if defined(__SSSE3__)
#define NORMNORM_TARGET_HAS_SSSE3 _ssse3
#else
#define NORMNORM_TARGET_HAS_SSSE3
#endif
#if defined(__SSE4_1__)
#define NORMNORM_TARGET_HAS_SSE4_1 _sse4_1
#else
#define NORMNORM_TARGET_HAS_SSE4_1
#endif
#if defined(__SSE4_2__)
#define NORMNORM_TARGET_HAS_SSE4_2 _sse4_2
#else
#define NORMNORM_TARGET_HAS_SSE4_2
#endif
#if defined(__AVX__)
#define NORMNORM_TARGET_HAS_AVX _avx
#else
#define NORMNORM_TARGET_HAS_AVX
#endif
#if defined(__AVX2__)
#define NORMNORM_TARGET_HAS_AVX2 _avx2
#else
#define NORMNORM_TARGET_HAS_AVX2
#endif
#if defined(__FMA__)
#define NORMNORM_TARGET_HAS_FMA _fma
#else
#define NORMNORM_TARGET_HAS_FMA
#endif
#if defined(__F16C__)
#define NORMNORM_TARGET_HAS_F16C _f16c
#else
#define NORMNORM_TARGET_HAS_F16C
#endif
#if defined(__BMI2__)
#define NORMNORM_TARGET_HAS_BMI2 _bmi2
#else
#define NORMNORM_TARGET_HAS_BMI2
#endif
#if defined(__AVX512F__)
#define NORMNORM_TARGET_HAS_AVX512F _avx512f
#else
#define NORMNORM_TARGET_HAS_AVX512F
#endif
#if defined(__AVX512CD__) && defined(__AVX512DQ__) && defined(__AVX512BW__)
#define NORMNORM_TARGET_HAS_AVX512CDDQBW _cd_dq_bw
#else
#define NORMNORM_TARGET_HAS_AVX512CDDQBW
#endif
#if defined(__AVX512VL__)
#define NORMNORM_TARGET_HAS_AVX512VL _vl
#else
#define NORMNORM_TARGET_HAS_AVX512VL
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#define NORMNORM_TARGET_HAS_NEON _neon
#else
#define NORMNORM_TARGET_HAS_NEON
#endif
#if defined(__ARM_FEATURE_FMA)
#define NORMNORM_TARGET_HAS_ARM_FMA _arm_fma
#else
#define NORMNORM_TARGET_HAS_ARM_FMA
#endif
// -ffast-math changes what the kernels compute: its code must not share names either.
#if defined(__FAST_MATH__)
#define NORMNORM_TARGET_HAS_FAST_MATH _fast_math
#else
#define NORMNORM_TARGET_HAS_FAST_MATH
#endif

// e.g. native_sse2 for baseline x86-64, native_sse2_..._avx2_fma_f16c_bmi2_... for -march=haswell.
#define NORMNORM_TARGET_NAMESPACE                                                                              \
  NORMNORM_TARGET_NAME(native, NORMNORM_TARGET_HAS_SSE2, NORMNORM_TARGET_HAS_SSE3, NORMNORM_TARGET_HAS_SSSE3,  \
                       NORMNORM_TARGET_HAS_SSE4_1, NORMNORM_TARGET_HAS_SSE4_2, NORMNORM_TARGET_HAS_AVX,          \
                       NORMNORM_TARGET_HAS_AVX2, NORMNORM_TARGET_HAS_FMA, NORMNORM_TARGET_HAS_F16C,              \
                       NORMNORM_TARGET_HAS_BMI2, NORMNORM_TARGET_HAS_AVX512F, NORMNORM_TARGET_HAS_AVX512CDDQBW,  \
                       NORMNORM_TARGET_HAS_AVX512VL, NORMNORM_TARGET_HAS_NEON, NORMNORM_TARGET_HAS_ARM_FMA,      \
                       NORMNORM_TARGET_HAS_FAST_MATH)

#endif  // !defined(NORMNORM_TARGET_NAMESPACE)

#define NORMNORM_TARGET_NAMESPACE_BEGIN inline namespace NORMNORM_TARGET_NAMESPACE {
#define NORMNORM_TARGET_NAMESPACE_END }

// Spelled out for messages and tests: the name in effect in this translation unit.
#define NORMNORM_TARGET_STRINGIFY2(x) #x
#define NORMNORM_TARGET_STRINGIFY(x) NORMNORM_TARGET_STRINGIFY2(x)
#define NORMNORM_TARGET_NAMESPACE_NAME NORMNORM_TARGET_STRINGIFY(NORMNORM_TARGET_NAMESPACE)

// For the members of shared types that the kernels call (Layout's index
// arithmetic): inlined everywhere, so never emitted as one shared copy compiled
// with some target's instructions.
#if defined(__GNUC__) || defined(__clang__)
#define NORMNORM_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define NORMNORM_ALWAYS_INLINE __forceinline
#else
#define NORMNORM_ALWAYS_INLINE inline
#endif

// Scalar per-group arithmetic that several kernels share (statistics.hpp): compiled once
// per target and called, never inlined, so every caller gets the same rounding (inlined,
// a compiler may fuse a product into an add in one caller and not in another). Only in
// the per-target namespace: each target still has its own copy.
#if defined(__GNUC__) || defined(__clang__)
#define NORMNORM_OUT_OF_LINE inline __attribute__((noinline))
#elif defined(_MSC_VER)
#define NORMNORM_OUT_OF_LINE inline __declspec(noinline)
#else
#define NORMNORM_OUT_OF_LINE inline
#endif
