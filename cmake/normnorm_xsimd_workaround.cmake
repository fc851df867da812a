# Workaround for Debian 12's libxsimd-dev (xsimd 8.1).
#
# Its exported target `xsimd` lists `xtl` in INTERFACE_LINK_LIBRARIES, but its
# package config never calls find_package(xtl). With no target named `xtl` in
# scope, CMake treats the name as a plain library and passes `-lxtl` to the
# linker, which fails with "cannot find -lxtl". xsimd only needs xtl for the
# optional XSIMD_ENABLE_XTL_COMPLEX support, which normnorm does not use, so an
# empty interface target is enough to make the name resolve to nothing. It is
# GLOBAL so a project that vendors normnorm (add_subdirectory, FetchContent) and
# also calls find_package(xsimd) itself links too.
#
# This file is included in exactly two places, both right before
# find_package(xsimd)/find_dependency(xsimd): the top-level CMakeLists.txt and
# the installed normnormConfig.cmake. If the consumer already has a real `xtl`
# target (e.g. it called find_package(xtl) first), it is left untouched.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED GLOBAL)
endif()
