#pragma once
// One dispatch target's kernels (engine/dispatch.hpp). Not for direct use:
// normnorm_add_simd_dispatch() (cmake/normnorm_dispatch.cmake) compiles a source
// that includes this header once per target, with that target's compiler flags
// and NORMNORM_DISPATCH_TARGET set to sse2, avx2 or avx512. The kernels are
// those of the translation unit's own xsimd::default_arch, and they say so
// (KernelSet::arch_name), so stronger global flags can never mislabel a path.

#include "normnorm/api.hpp"

#if !defined(NORMNORM_DISPATCH_TARGET)
#error "normnorm/simd_dispatch_target.hpp: define NORMNORM_DISPATCH_TARGET (sse2, avx2 or avx512)"
#endif

#define NORMNORM_DISPATCH_CONCAT2(a, b) a##b
#define NORMNORM_DISPATCH_CONCAT(a, b) NORMNORM_DISPATCH_CONCAT2(a, b)

namespace normnorm::engine {

namespace dispatch_target_check {
// The flags must at least reach the target's instruction set.
using sse2 = xsimd::sse2;
using avx2 = xsimd::fma3<xsimd::avx2>;
using avx512 = xsimd::avx512bw;
static_assert(xsimd::default_arch::version() >= NORMNORM_DISPATCH_TARGET::version(),
              "normnorm: this dispatch target was compiled without its instruction set's flags");
}  // namespace dispatch_target_check

const KernelSet& NORMNORM_DISPATCH_CONCAT(dispatch_kernels_, NORMNORM_DISPATCH_TARGET)() {
  static const KernelSet kernels = kernel_set<xsimd::default_arch>();
  return kernels;
}

}  // namespace normnorm::engine
