#pragma once
// Build-wide switches and the few macros the library uses.

#include <cstdint>

#include "normnorm/version.hpp"

namespace normnorm {

// Signed sizes everywhere: shapes come from PyTorch/NumPy (int64) and signed
// arithmetic keeps loop bounds free of unsigned wrap-around surprises.
using index_t = std::int64_t;

}  // namespace normnorm
