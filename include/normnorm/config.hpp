#pragma once
// Build-wide switches and the few macros the library uses.

#include <cstdint>

#include "normnorm/detail/target_namespace.hpp"
#include "normnorm/version.hpp"

// 1 when the translation unit is compiled with exceptions (the default), 0 with
// -fno-exceptions: then only the try_* entry points report errors (status.hpp).
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define NORMNORM_EXCEPTIONS 1
#else
#define NORMNORM_EXCEPTIONS 0
#endif

namespace normnorm {

// Signed sizes everywhere: shapes come from PyTorch/NumPy (int64) and signed
// arithmetic keeps loop bounds free of unsigned wrap-around surprises.
using index_t = std::int64_t;

}  // namespace normnorm
