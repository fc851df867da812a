#pragma once
// Which instruction set runs the kernels, chosen at run time.
//
// Every kernel is a template over an instruction set Arch (lanes.hpp). A program
// always holds two kernel sets: the scalar reference path and "native", the
// xsimd::default_arch of the translation unit that calls normnorm (what its -m
// flags allow). A program built for baseline x86-64 can add more: CMake's
// normnorm_add_simd_dispatch(<target>) (cmake/normnorm_dispatch.cmake) compiles
// normnorm/simd_dispatch_target.hpp three times, with SSE2, AVX2+FMA and AVX-512
// flags, and defines NORMNORM_SIMD_DISPATCH; each of those translation units
// defines one dispatch_kernels_<target>() below. SimdPath::automatic then takes,
// through xsimd::dispatch, the best of them this CPU runs (or native, if better).

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "normnorm/engine/backward.hpp"
#include "normnorm/engine/column_backward.hpp"
#include "normnorm/engine/column_forward.hpp"
#include "normnorm/engine/forward.hpp"
#include "normnorm/engine/forward_reduced.hpp"
#include "normnorm/engine/noise_draws.hpp"
#include "normnorm/engine/transpose.hpp"
#include "normnorm/status.hpp"
#include "normnorm/detail/target_namespace.hpp"

#include "normnorm/detail/begin_simd_code.hpp"

namespace normnorm {

enum class SimdPath : unsigned char {
  automatic,  // the best path this program holds and this CPU runs (the default)
  scalar,     // the scalar reference path
  native,     // xsimd::default_arch of the calling translation unit
  sse2,       // dispatch targets: only with normnorm_add_simd_dispatch()
  avx2,       //   (AVX2 + FMA)
  avx512,     //   (AVX-512 F, CD, DQ, BW)
};

inline const char* to_string(SimdPath path) noexcept {
  switch (path) {
    case SimdPath::automatic: return "automatic";
    case SimdPath::scalar: return "scalar";
    case SimdPath::native: return "native";
    case SimdPath::sse2: return "sse2";
    case SimdPath::avx2: return "avx2";
    case SimdPath::avx512: return "avx512";
  }
  return "unknown";
}

namespace engine {

NORMNORM_TARGET_NAMESPACE_BEGIN
// Names the translation unit's target in template arguments (see Kernels<T>).
struct calling_target {};
NORMNORM_TARGET_NAMESPACE_END

// One instruction set's kernels for one value type. The pointers lead into code
// compiled per target (for the dispatch targets, in their own translation
// units). The member functions are what callers use: they run in the CALLER's
// translation unit and do there everything that is not per-element work (sizing
// the context's vectors, reaching Eigen's thread pool, formatting errors), so no
// target's objects hold std::vector, Eigen or string code. They are templates over
// the caller's target (default argument: this translation unit's) so that
// translation units built with different flags never share one definition.
template <class T>
struct Kernels {
  index_t (*forward_kernel)(const ForwardRequest<T>&, SavedContext<T>&, const Workers&) = nullptr;
  void (*backward_kernel)(const BackwardRequest<T>&, SavedContext<T>&, const Workers&) = nullptr;
  void (*transpose_kernel)(const Transposition&, const T*, T*, bool, const Workers&) = nullptr;
  void (*fill_noise_kernel)(const NoiseSource<T>&, index_t first, index_t count, T* out) = nullptr;
  void (*evaluate_kernel)(const Layout&, const T*, T*, const EvaluationCache<T>&, const Workers&) = nullptr;
  // 2-byte storage computed in T (float only; null for double).
  void (*evaluate_bfloat16_kernel)(const Layout&, const Eigen::bfloat16*, Eigen::bfloat16*, const EvaluationCache<T>&,
                                   const Workers&) = nullptr;
  void (*evaluate_half_kernel)(const Layout&, const Eigen::half*, Eigen::half*, const EvaluationCache<T>&,
                               const Workers&) = nullptr;

  template <class Caller = calling_target>
  Status forward(const ForwardRequest<T>& rq, SavedContext<T>& ctx) const {
    prepare_forward(rq, ctx);
    const index_t failed = forward_kernel(rq, ctx, workers_on(rq.device));
    if (failed != no_failed_group) return forward_failure(rq, ctx, failed);
    return {};
  }
  template <class Caller = calling_target>
  void backward(const BackwardRequest<T>& rq, SavedContext<T>& ctx) const {
    backward_kernel(rq, ctx, workers_on(rq.device));
  }
  // For (N, C) and channels-last input: the copies to and from the engine's layout,
  // and the noise drawn in the caller's order (the scalar path draws with native's
  // instruction set; sets with FMA may round the Box-Muller step differently).
  template <class Caller = calling_target>
  void transpose(const Transposition& t, const T* src, T* dst, bool to_engine, const Eigen::ThreadPoolDevice* device) const {
    transpose_kernel(t, src, dst, to_engine, workers_on(device));
  }
  template <class Caller = calling_target>
  void fill_noise(const NoiseSource<T>& noise, index_t first, index_t count, T* out) const {
    fill_noise_kernel(noise, first, count, out);
  }
  // Batch-form evaluation from a prepared cache (read-only: any number of threads).
  template <class Caller = calling_target>
  void evaluate(const Layout& layout, const T* x, T* out, const EvaluationCache<T>& cache,
                const Eigen::ThreadPoolDevice* device) const {
    evaluate_kernel(layout, x, out, cache, workers_on(device));
  }
  // The same for tensors stored in a 2-byte type S (widened and rounded in blocks).
  template <class S, class Caller = calling_target>
  void evaluate_narrow(const Layout& layout, const S* x, S* out, const EvaluationCache<T>& cache,
                       const Eigen::ThreadPoolDevice* device) const {
    if constexpr (std::is_same_v<S, Eigen::bfloat16>)
      evaluate_bfloat16_kernel(layout, x, out, cache, workers_on(device));
    else
      evaluate_half_kernel(layout, x, out, cache, workers_on(device));
  }
};

// One instruction set's kernels, for both value types.
struct KernelSet {
  const char* arch_name = "";  // xsimd's name ("avx512bw", "fma3<avx2>", ...) or "scalar"
  unsigned arch_version = 0;   // xsimd's ordering of instruction sets (0: scalar)
  Kernels<float> f32;
  Kernels<double> f64;

  template <class T> const Kernels<T>& of() const {
    if constexpr (std::is_same_v<T, float>) return f32;
    else return f64;
  }
};

// Defined by the translation units normnorm_add_simd_dispatch() adds (one each):
// one name each in the whole program, outside the per-target namespaces.
const KernelSet& dispatch_kernels_sse2();
const KernelSet& dispatch_kernels_avx2();
const KernelSet& dispatch_kernels_avx512();

NORMNORM_TARGET_NAMESPACE_BEGIN

template <class T, class Arch>
inline Kernels<T> kernels_of() {
  Kernels<T> kernels{&forward<T, Arch>, &backward<T, Arch>, &transpose<T, Arch>, &fill_noise<T, Arch>,
                     &apply_evaluation<T, Arch>};
  if constexpr (std::is_same_v<T, float>) {
    kernels.evaluate_bfloat16_kernel = &apply_evaluation_narrow<Eigen::bfloat16, Arch>;
    kernels.evaluate_half_kernel = &apply_evaluation_narrow<Eigen::half, Arch>;
  }
  return kernels;
}

template <class Arch>
inline unsigned arch_version() {
  if constexpr (math::is_simd<Arch>) return Arch::version();
  else return 0;
}

template <class Arch>
inline KernelSet kernel_set() {
  return {Arch::name(), arch_version<Arch>(), kernels_of<float, Arch>(), kernels_of<double, Arch>()};
}

// Whether the operating system saves the AVX (ymm) and AVX-512 (zmm, k) register
// state: xsimd 8.1 reads only the CPU's feature bits, but a CPU may have AVX-512
// that the OS (or a hypervisor) leaves disabled. XCR0 via xgetbv, when OSXSAVE is set.
struct OsSimdState {
  bool avx = false, avx512 = false;
};
inline OsSimdState os_simd_state() noexcept {
  OsSimdState state;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx));
  if (!((ecx >> 27) & 1u)) return state;  // no OSXSAVE: no xgetbv
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  state.avx = (xcr0_low & 0x6u) == 0x6u;             // SSE and AVX state
  state.avx512 = (xcr0_low & 0xE6u) == 0xE6u;        // plus opmask, ZMM_Hi256, Hi16_ZMM
#else
  state.avx = state.avx512 = true;  // not x86 (no such instruction sets), or an unknown compiler
#endif
  return state;
}

// Whether this CPU (and its OS) runs code built for an instruction set of this
// version: the criterion xsimd::dispatch applies, plus the OS state above.
inline bool cpu_runs(unsigned version) {
  static const OsSimdState os = os_simd_state();
  static const auto cpu = xsimd::available_architectures();
  if (version > cpu.best) return false;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
  if (version >= xsimd::avx512f::version()) return os.avx512 && cpu.avx512f && cpu.avx512cd && cpu.avx512dq && cpu.avx512bw;
  if (version >= xsimd::avx::version()) return os.avx;
#endif
  return true;
}

#if defined(NORMNORM_SIMD_DISPATCH)
inline constexpr bool simd_dispatch_built = true;
#else
inline constexpr bool simd_dispatch_built = false;
#endif

// A dispatch target before any of its code runs: the function that returns its
// kernels is compiled with the target's flags too (its static initialization may
// use the target's instructions), so it is called only once the CPU runs `version`.
struct DispatchTarget {
  const KernelSet& (*kernels)();
  unsigned version;  // the target's instruction set (its flags may reach further: KernelSet::arch_version)
};

// xsimd::dispatch's functor: the dispatch target for an instruction set.
struct DispatchTargetFor {
  template <class Arch>
  DispatchTarget operator()(Arch) const noexcept {
    if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) return {&dispatch_kernels_avx512, xsimd::avx512bw::version()};
    else if constexpr (std::is_base_of_v<xsimd::fma3<xsimd::avx2>, Arch>)
      return {&dispatch_kernels_avx2, xsimd::fma3<xsimd::avx2>::version()};
    else return {&dispatch_kernels_sse2, xsimd::sse2::version()};
  }
};

// The target's kernels, or null when this CPU cannot run them.
inline const KernelSet* runnable(DispatchTarget target) {
  if (!cpu_runs(target.version)) return nullptr;
  const KernelSet* set = &target.kernels();
  return cpu_runs(set->arch_version) ? set : nullptr;
}

// The kernels of a path, or null when this program lacks it or this CPU cannot
// run it. Templates over the calling translation unit's native architecture and
// dispatch setting, so translation units built with different flags never share
// one definition.
template <class NativeArch = xsimd::default_arch, bool Dispatch = simd_dispatch_built>
inline const KernelSet* kernels_for(SimdPath path) {
  static const KernelSet scalar = kernel_set<math::scalar_arch>();
  static const KernelSet native = kernel_set<NativeArch>();
  switch (path) {
    case SimdPath::scalar: return &scalar;
    case SimdPath::native: return &native;
    case SimdPath::automatic: {
      static const KernelSet* const best = [] {
        const KernelSet* chosen = &native;
        if constexpr (Dispatch) {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
          using Targets = xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse2>;
          DispatchTarget target = xsimd::dispatch<Targets>(DispatchTargetFor{})();
          // xsimd::dispatch reads the CPU's bits only: step down while the OS refuses the state.
          if (!cpu_runs(target.version) && target.kernels == &dispatch_kernels_avx512)
            target = DispatchTargetFor{}(xsimd::fma3<xsimd::avx2>{});
          if (!cpu_runs(target.version)) target = DispatchTargetFor{}(xsimd::sse2{});
          const KernelSet* set = runnable(target);
          if (set && set->arch_version > chosen->arch_version) chosen = set;
#endif
        }
        return chosen;
      }();
      return best;
    }
    case SimdPath::sse2:
    case SimdPath::avx2:
    case SimdPath::avx512:
      if constexpr (Dispatch) {
        if (path == SimdPath::sse2) return runnable(DispatchTargetFor{}(xsimd::sse2{}));
        if (path == SimdPath::avx2) return runnable(DispatchTargetFor{}(xsimd::fma3<xsimd::avx2>{}));
        return runnable(DispatchTargetFor{}(xsimd::avx512bw{}));
      }
      return nullptr;
  }
  return nullptr;
}

template <class T, class NativeArch = xsimd::default_arch, bool Dispatch = simd_dispatch_built>
inline Status select_kernels(SimdPath path, const Kernels<T>*& kernels) {
  const KernelSet* set = kernels_for<NativeArch, Dispatch>(path);
  if (!set)
    return Status::invalid_argument(std::string("normnorm: SIMD path ") + to_string(path) +
                                    (Dispatch || path == SimdPath::automatic || path == SimdPath::native
                                         ? " is not supported by this CPU"
                                         : " is not built into this program (see normnorm_add_simd_dispatch)"));
  kernels = &set->of<T>();
  return {};
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace engine

// A path this program holds and this CPU runs, as it resolves.
struct SimdPathInfo {
  SimdPath path;
  const char* arch_name;  // the xsimd architecture it runs ("scalar" for the scalar path)
};

NORMNORM_TARGET_NAMESPACE_BEGIN

// Every path available here, scalar first, then native, then the dispatch
// targets this CPU runs. What automatic resolves to is available_simd_paths()
// entry whose arch matches resolved_simd_path().
// (Templates only so that translation units built with different flags never
// share one definition; call them without arguments.)
template <class NativeArch = xsimd::default_arch, bool Dispatch = engine::simd_dispatch_built>
inline std::vector<SimdPathInfo> available_simd_paths() {
  std::vector<SimdPathInfo> paths;
  for (SimdPath path : {SimdPath::scalar, SimdPath::native, SimdPath::sse2, SimdPath::avx2, SimdPath::avx512})
    if (const engine::KernelSet* set = engine::kernels_for<NativeArch, Dispatch>(path))
      paths.push_back({path, set->arch_name});
  return paths;
}

// The xsimd architecture a path runs here ("" when it is not available).
template <class NativeArch = xsimd::default_arch, bool Dispatch = engine::simd_dispatch_built>
inline const char* resolved_simd_arch(SimdPath path = SimdPath::automatic) {
  const engine::KernelSet* set = engine::kernels_for<NativeArch, Dispatch>(path);
  return set ? set->arch_name : "";
}

NORMNORM_TARGET_NAMESPACE_END
}  // namespace normnorm

#include "normnorm/detail/end_simd_code.hpp"
