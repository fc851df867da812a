#pragma once
// Lane-generic helpers: every per-element formula in normnorm is written once as
// a template over V, where V is either a scalar T (the scalar path, also used
// for the tail of a run) or an xsimd::batch<T> (the SIMD path).

#include <cmath>
#include <type_traits>

#include "normnorm/detail/xsimd.hpp"

#include "normnorm/config.hpp"

#include "normnorm/detail/begin_simd_code.hpp"
#include "normnorm/detail/target_namespace.hpp"

namespace normnorm::math {
NORMNORM_TARGET_NAMESPACE_BEGIN

// The instruction set a kernel is instantiated for: an xsimd architecture
// (xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse2, ...) or scalar_arch,
// the scalar reference path. engine/dispatch.hpp picks one at run time.
struct scalar_arch {
  static constexpr const char* name() noexcept { return "scalar"; }
};
template <class Arch> inline constexpr bool is_simd = !std::is_same_v<Arch, scalar_arch>;
// For code with no scalar form (the noise generator): Arch, or the compiled
// default architecture on the scalar path.
template <class Arch> using vector_arch = std::conditional_t<is_simd<Arch>, Arch, xsimd::default_arch>;

// The instruction set of a lane type: a batch's own; for a scalar, the translation
// unit's default architecture (a SIMD kernel's scalar tail passes its Arch instead
// where the arch changes what is computed, as fast_math.hpp's fmadd does).
template <class V> struct lane_arch_of { using type = xsimd::default_arch; };
template <class T, class A> struct lane_arch_of<xsimd::batch<T, A>> { using type = A; };
template <class V> using lane_arch = typename lane_arch_of<V>::type;

// The lane type of a kernel: xsimd::batch<T, Arch>, or T itself on the scalar path.
template <class T, class Arch> struct lane_batch_of { using type = xsimd::batch<T, Arch>; };
template <class T> struct lane_batch_of<T, scalar_arch> { using type = T; };
template <class T, class Arch> using lane_batch = typename lane_batch_of<T, Arch>::type;

template <class V> struct lane_traits { using scalar = V; static constexpr index_t width = 1; };
template <class T, class A> struct lane_traits<xsimd::batch<T, A>> {
  using scalar = T;
  static constexpr index_t width = static_cast<index_t>(xsimd::batch<T, A>::size);
};

// Loads and stores of `lane_traits<V>::width` consecutive values.
template <class V> NORMNORM_ALWAYS_INLINE V load(const typename lane_traits<V>::scalar* p) {
  if constexpr (std::is_arithmetic_v<V>) return *p;
  else return V::load_unaligned(p);
}
template <class V> NORMNORM_ALWAYS_INLINE void store(typename lane_traits<V>::scalar* p, const V& v) {
  if constexpr (std::is_arithmetic_v<V>) *p = v;
  else v.store_unaligned(p);
}

// where(mask, a, b) (numpy.where) for both bool and batch_bool masks.
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
NORMNORM_ALWAYS_INLINE T where(bool mask, T a, T b) { return mask ? a : b; }
template <class T, class A>
NORMNORM_ALWAYS_INLINE xsimd::batch<T, A> where(const xsimd::batch_bool<T, A>& mask, const xsimd::batch<T, A>& a,
                                 const xsimd::batch<T, A>& b) {
  return xsimd::select(mask, a, b);
}

// Whether any lane of a mask is set (the mask itself for a scalar).
NORMNORM_ALWAYS_INLINE bool any_lane(bool mask) { return mask; }
template <class T, class A>
NORMNORM_ALWAYS_INLINE bool any_lane(const xsimd::batch_bool<T, A>& mask) {
  return xsimd::any(mask);
}

// Elementary functions: the scalar path calls the C library, the SIMD path xsimd.
template <class V> NORMNORM_ALWAYS_INLINE V abs(const V& v) { if constexpr (std::is_arithmetic_v<V>) return std::abs(v); else return xsimd::abs(v); }
template <class V> NORMNORM_ALWAYS_INLINE V log1p(const V& v) { if constexpr (std::is_arithmetic_v<V>) return std::log1p(v); else return xsimd::log1p(v); }
// xsimd 8.1's double exp and expm1 convert round(x / ln 2) to int64 in every lane,
// which is undefined for NaN, Inf and huge values: clamp first (both saturate well
// before +-800 anyway) and put NaN back afterwards. (The SIMD kernels call
// fast_math.hpp's expm1_fast, which needs no clamp; these wrappers serve the rest.)
template <class V, class Function>
NORMNORM_ALWAYS_INLINE V with_clamped_exponent(const V& v, Function&& function) {
  using T = typename lane_traits<V>::scalar;
  const auto is_number = v == v;
  const V bounded = xsimd::select(is_number, xsimd::min(xsimd::max(v, V(T(-800))), V(T(800))), V(T(0)));
  return xsimd::select(is_number, function(bounded), v);
}
template <class V> NORMNORM_ALWAYS_INLINE V expm1(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) return std::expm1(v);
  else return with_clamped_exponent(v, [](const V& x) { return xsimd::expm1(x); });
}
template <class V> NORMNORM_ALWAYS_INLINE V exp(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) return std::exp(v);
  else return with_clamped_exponent(v, [](const V& x) { return xsimd::exp(x); });
}
template <class V> NORMNORM_ALWAYS_INLINE V sqrt(const V& v) { if constexpr (std::is_arithmetic_v<V>) return std::sqrt(v); else return xsimd::sqrt(v); }

// Horizontal sum into double (one lane for scalars).
template <class V> NORMNORM_ALWAYS_INLINE double lane_sum(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) return static_cast<double>(v);
  else return static_cast<double>(xsimd::hadd(v));
}

// Horizontal maximum (xsimd 8.1 has none).
template <class V> NORMNORM_ALWAYS_INLINE typename lane_traits<V>::scalar lane_max(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) {
    return v;
  } else {
    using T = typename lane_traits<V>::scalar;
    alignas(64) T lanes[V::size];
    v.store_aligned(lanes);
    T largest = lanes[0];
    for (std::size_t i = 1; i < V::size; ++i) largest = lanes[i] > largest ? lanes[i] : largest;
    return largest;
  }
}

// Runs kernel(V{}, i) over [0, n): SIMD batches first, then the scalar tail.
// With Arch = scalar_arch every element takes the scalar path (the reference
// path the SIMD ones are tested against).
template <class T, class Arch, class Kernel>
NORMNORM_ALWAYS_INLINE void for_each_lane(index_t n, Kernel&& kernel) {
  index_t i = 0;
  if constexpr (is_simd<Arch>) {
    using B = xsimd::batch<T, Arch>;
    constexpr index_t width = static_cast<index_t>(B::size);
    for (; i + width <= n; i += width) kernel(B(T(0)), i);
  }
  for (; i < n; ++i) kernel(T(0), i);
}

// A term as rounded on its own, before it is added to a sum. The compiler must treat
// the empty asm as changing the value, so it cannot fuse the multiply that made the
// term into the accumulator's add (FMA contraction). Every sum in the engine adds its
// terms this way, so a sum is the same bits however the code around it is inlined:
// the groups of a contiguous tensor and the columns of (N, C) and channels-last rows
// (engine/column_reduction.hpp) give identical results.
template <class V>
NORMNORM_ALWAYS_INLINE V rounded_term(V v) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
  if constexpr (std::is_arithmetic_v<V>) {
    __asm__("" : "+v"(v));
  } else {
    auto raw = v.data;
    __asm__("" : "+v"(raw));
    v = V(raw);
  }
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  if constexpr (std::is_arithmetic_v<V>) {
    __asm__("" : "+w"(v));
  } else {
    auto raw = v.data;
    __asm__("" : "+w"(raw));
    v = V(raw);
  }
#else
  // Elsewhere a volatile round trip does the same for scalars, more slowly. Vectors get no
  // barrier here: MSVC does not contract vector intrinsics, but GCC on other architectures
  // (32-bit ARM NEON, POWER) may, and there the in-place columns and the transposed copy
  // may differ in the last bit (never tested: only x86 and aarch64 have the asm barrier).
  if constexpr (std::is_arithmetic_v<V>) {
    volatile V stored = v;
    v = stored;
  }
#endif
  return v;
}

// K running sums kept per lane type (batch lanes and scalar tail), folded into
// double: summation order is fixed by the data layout alone, never by threads.
template <class T, class Arch, int K>
struct LaneSums {
  using B = lane_batch<T, Arch>;
  B wide[K];
  T tail[K];
  LaneSums() { reset(); }
  void reset() { for (int k = 0; k < K; ++k) { wide[k] = B(T(0)); tail[k] = T(0); } }
  void add(int k, const B& v) { wide[k] += rounded_term(v); }
  template <class U = T, std::enable_if_t<!std::is_same_v<U, B>, int> = 0>
  void add(int k, const T& v) { tail[k] += rounded_term(v); }
  double total(int k) const { return lane_sum(wide[k]) + static_cast<double>(tail[k]); }
};

// Block length for reductions: partial sums in T are folded into double every
// block so float accumulation error stays small on long runs.
constexpr index_t reduction_block = 512;

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm::math

#include "normnorm/detail/end_simd_code.hpp"
