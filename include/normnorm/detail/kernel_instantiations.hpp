#pragma once
// The engine's kernels, instantiated once in the library normnorm::compiled instead
// of in every translation unit (docs/integration.md, "Compile time").
//
// Every call into normnorm selects its kernels through engine::kernels_for, which
// takes the address of forward, backward, transpose, fill_noise and apply_evaluation
// for float and double on two instruction sets: the scalar path and xsimd::default_arch. Those eight
// kernel pairs are nearly all of a translation unit's compile time, whichever forms
// it uses. With NORMNORM_EXTERN_TEMPLATES defined (linking normnorm::compiled defines
// it), they are declared here as instantiated elsewhere, and src/compiled.cpp defines
// them. The compiler then only needs their declarations: no optimisation and no code
// for them in the user's translation units.
//
// The instruction set is the translation unit's xsimd::default_arch, so the library
// must be built with the same -m flags as the code using it (a mismatch is a link
// error naming the kernel, never a silent mix). The SIMD dispatch targets
// (NORMNORM_DISPATCH_TARGET) always instantiate their own.

#include "normnorm/engine/dispatch.hpp"

// prefix: `extern` for a declaration, nothing for a definition.
#define NORMNORM_KERNELS_OF(prefix, T, Arch)                                                                     \
  prefix template index_t engine::forward<T, Arch>(const engine::ForwardRequest<T>&, SavedContext<T>&,          \
                                                   const engine::Workers&);                                     \
  prefix template void engine::backward<T, Arch>(const engine::BackwardRequest<T>&, SavedContext<T>&,           \
                                                 const engine::Workers&);                                       \
  prefix template void engine::transpose<T, Arch>(const engine::Transposition&, const T*, T*, bool,             \
                                                  const engine::Workers&);                                      \
  prefix template void engine::fill_noise<T, Arch>(const NoiseSource<T>&, index_t, index_t, T*);                \
  prefix template void engine::apply_evaluation<T, Arch>(const Layout&, const T*, T*, const EvaluationCache<T>&, \
                                                         const engine::Workers&);

// 2-byte storage's evaluation (float compute).
#define NORMNORM_NARROW_KERNELS_OF(prefix, Arch)                                                                    \
  prefix template void engine::apply_evaluation_narrow<Eigen::bfloat16, Arch>(                                    \
      const Layout&, const Eigen::bfloat16*, Eigen::bfloat16*, const EvaluationCache<float>&, const engine::Workers&); \
  prefix template void engine::apply_evaluation_narrow<Eigen::half, Arch>(                                        \
      const Layout&, const Eigen::half*, Eigen::half*, const EvaluationCache<float>&, const engine::Workers&);

#define NORMNORM_ALL_KERNELS(prefix)                           \
  NORMNORM_KERNELS_OF(prefix, float, math::scalar_arch)        \
  NORMNORM_KERNELS_OF(prefix, double, math::scalar_arch)       \
  NORMNORM_KERNELS_OF(prefix, float, xsimd::default_arch)      \
  NORMNORM_KERNELS_OF(prefix, double, xsimd::default_arch)     \
  NORMNORM_NARROW_KERNELS_OF(prefix, math::scalar_arch)        \
  NORMNORM_NARROW_KERNELS_OF(prefix, xsimd::default_arch)

#if defined(NORMNORM_EXTERN_TEMPLATES) && !defined(NORMNORM_DISPATCH_TARGET) && !defined(NORMNORM_COMPILING_KERNELS)
namespace normnorm {
NORMNORM_ALL_KERNELS(extern)
}  // namespace normnorm
#endif
