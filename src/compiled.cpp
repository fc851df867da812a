// normnorm::compiled: the engine's kernels for float and double, on the scalar path
// and on xsimd::default_arch of the flags this file is built with, compiled once.
// Code linking normnorm::compiled gets NORMNORM_EXTERN_TEMPLATES and only declares
// them (normnorm/detail/kernel_instantiations.hpp).
#define NORMNORM_COMPILING_KERNELS 1
#include <normnorm/normnorm.hpp>

namespace normnorm {
NORMNORM_ALL_KERNELS()
}  // namespace normnorm
