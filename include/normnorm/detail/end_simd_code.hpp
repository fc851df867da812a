// Closes detail/begin_simd_code.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
