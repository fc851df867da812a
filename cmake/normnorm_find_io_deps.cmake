# Finds what the optional normnorm::io component needs: libzip and nlohmann_json.
# Sets NORMNORM_IO_DEPS_FOUND and, when found, the targets PkgConfig::NORMNORM_LIBZIP
# and nlohmann_json::nlohmann_json. Used by normnorm's CMakeLists.txt and by the
# installed package config. Never fails: without them there is simply no normnorm::io.
#
# libzip comes through pkg-config rather than its CMake package: Debian 12's
# libzip-config.cmake stops the configure with FATAL_ERROR unless the zipcmp,
# zipmerge and ziptool programs are installed too, which would break the core build.
find_package(nlohmann_json 3 CONFIG QUIET)
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND AND NOT TARGET PkgConfig::NORMNORM_LIBZIP)
  pkg_check_modules(NORMNORM_LIBZIP QUIET IMPORTED_TARGET GLOBAL libzip)
endif()
if(TARGET PkgConfig::NORMNORM_LIBZIP AND TARGET nlohmann_json::nlohmann_json)
  set(NORMNORM_IO_DEPS_FOUND ON)
else()
  set(NORMNORM_IO_DEPS_FOUND OFF)
endif()
