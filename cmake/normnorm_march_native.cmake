# Sets NORMNORM_COMPILER_HAS_MARCH_NATIVE (cached) to whether the C++ compiler
# accepts -march=native. Used by the native test build and the benchmarks; the
# library target itself never gets -march flags (that is the user's choice).
include_guard(GLOBAL)
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-march=native" NORMNORM_COMPILER_HAS_MARCH_NATIVE)
