# Compiles tests/warnings/all_forms.cpp the way a consumer's build would (normnorm's
# headers as a normal include directory, Eigen's and xsimd's as system ones, as CMake
# passes imported targets) and fails on any diagnostic. Run by ctest (cmake -P).
#
# -D variables: COMPILER, SOURCE, NORMNORM_INCLUDE, SYSTEM_INCLUDES ('|'-separated),
#               EXTRA_FLAGS ('|'-separated, e.g. -march=native), OUTPUT,
#               IMPLICIT_INCLUDES ('|'-separated: the compiler's own directories, which
#               CMake never passes either; -isystem /usr/include breaks #include_next)
cmake_minimum_required(VERSION 3.16)

set(_flags -std=c++17 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror)
string(REPLACE "|" ";" _extra "${EXTRA_FLAGS}")
string(REPLACE "|" ";" _system "${SYSTEM_INCLUDES}")
string(REPLACE "|" ";" _implicit "${IMPLICIT_INCLUDES}")
set(_includes "-I${NORMNORM_INCLUDE}")
foreach(_dir IN LISTS _system)
  if(_dir AND NOT _dir IN_LIST _implicit)
    list(APPEND _includes -isystem "${_dir}")
  endif()
endforeach()

set(_command "${COMPILER}" ${_flags} ${_extra} ${_includes} -c "${SOURCE}" -o "${OUTPUT}")
string(REPLACE ";" " " _pretty "${_command}")
message(STATUS "${_pretty}")
execute_process(COMMAND ${_command} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0 OR _out MATCHES "warning" OR _err MATCHES "warning")
  message(FATAL_ERROR "diagnostics (exit ${_rc}):\n${_out}${_err}")
endif()
message(STATUS "no warnings")
