// Catch2's main(), compiled once into an object library and linked into every
// test executable (it is by far the slowest file to compile).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
