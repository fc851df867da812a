#pragma once
// One dispatch target's kernels (engine/dispatch.hpp). Not for direct use:
// normnorm_add_simd_dispatch() (cmake/normnorm_dispatch.cmake) compiles a source
// that includes this header once per target, with that target's compiler flags
// and NORMNORM_DISPATCH_TARGET set to sse2, avx2 or avx512. The kernels are
// those of the translation unit's own xsimd::default_arch, and they say so
// (KernelSet::arch_name), so stronger global flags can never mislabel a path.
// The source also defines NORMNORM_TARGET_NAMESPACE (dispatch_<target>): all
// normnorm code compiled here gets that target's own linker names
// (detail/target_namespace.hpp), so no other object's copy can replace it.

#if !defined(NORMNORM_DISPATCH_TARGET) || !defined(NORMNORM_TARGET_NAMESPACE)
#error "normnorm/simd_dispatch_target.hpp: define NORMNORM_DISPATCH_TARGET (sse2, avx2 or avx512) and NORMNORM_TARGET_NAMESPACE"
#endif
#if defined(NORMNORM_TARGET_NAMESPACE_BEGIN)
#error "normnorm/simd_dispatch_target.hpp must be the first normnorm header of its translation unit"
#endif

#include "normnorm/api.hpp"

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

// The one function of this translation unit with a program-wide name (declared in
// engine/dispatch.hpp): everything it reaches is in this target's namespace.
const KernelSet& NORMNORM_DISPATCH_CONCAT(dispatch_kernels_, NORMNORM_DISPATCH_TARGET)() {
  static const KernelSet kernels = NORMNORM_TARGET_NAMESPACE::kernel_set<xsimd::default_arch>();
  return kernels;
}

}  // namespace normnorm::engine
