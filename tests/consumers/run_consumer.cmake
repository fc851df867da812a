# Builds and runs one consumer project (cmake -P script, driven by ctest).
#
# Required -D variables:
#   CONSUMER_MODE              add_subdirectory | find_package | find_package_mpi |
#                              fetchcontent | export
#   CONSUMER_SOURCE_DIR        the consumer project (tests/consumers/<mode>)
#   CONSUMER_BINARY_DIR        scratch directory under the build tree (wiped first)
#   NORMNORM_SOURCE_DIR        normnorm's source tree
#   NORMNORM_EXPECTED_VERSION  the version the consumer program must print
#   CONSUMER_GENERATOR, CONSUMER_CXX_COMPILER
# Optional: CONSUMER_BUILD_TYPE, CONSUMER_MAKE_PROGRAM,
#           CONSUMER_GENERATOR_PLATFORM, CONSUMER_GENERATOR_TOOLSET
cmake_minimum_required(VERSION 3.16)

foreach(_var CONSUMER_MODE CONSUMER_SOURCE_DIR CONSUMER_BINARY_DIR NORMNORM_SOURCE_DIR
             NORMNORM_EXPECTED_VERSION CONSUMER_GENERATOR CONSUMER_CXX_COMPILER)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${_var} is not set")
  endif()
endforeach()

# Runs a command, echoing it; stops the script with a clear message on failure.
function(nn_run what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${CONSUMER_MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${CONSUMER_MODE}] ${what} failed (${_rc})")
  endif()
endfunction()

# Options shared by every configure step: same generator, compiler and build type
# as the build tree that runs the test.
set(_gen_args -G "${CONSUMER_GENERATOR}" "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
if(CONSUMER_GENERATOR_PLATFORM)
  list(APPEND _gen_args -A "${CONSUMER_GENERATOR_PLATFORM}")
endif()
if(CONSUMER_GENERATOR_TOOLSET)
  list(APPEND _gen_args -T "${CONSUMER_GENERATOR_TOOLSET}")
endif()
if(CONSUMER_MAKE_PROGRAM)
  list(APPEND _gen_args "-DCMAKE_MAKE_PROGRAM=${CONSUMER_MAKE_PROGRAM}")
endif()
set(_config_args "")
if(CONSUMER_BUILD_TYPE)
  list(APPEND _gen_args "-DCMAKE_BUILD_TYPE=${CONSUMER_BUILD_TYPE}")
  set(_config_args --config "${CONSUMER_BUILD_TYPE}")
endif()

file(REMOVE_RECURSE "${CONSUMER_BINARY_DIR}")
file(MAKE_DIRECTORY "${CONSUMER_BINARY_DIR}")

set(_consumer_build "${CONSUMER_BINARY_DIR}/build")
set(_consumer_args "")

# find_package and find_package_mpi consume an installed normnorm.
set(_installed FALSE)
if(CONSUMER_MODE MATCHES "^find_package")
  set(_installed TRUE)
endif()

if(_installed)
  # Configure normnorm on its own (tests etc. off) and install it into a prefix.
  set(_nn_build "${CONSUMER_BINARY_DIR}/normnorm-build")
  set(_prefix "${CONSUMER_BINARY_DIR}/prefix")
  nn_run("configure normnorm" "${CMAKE_COMMAND}" -S "${NORMNORM_SOURCE_DIR}" -B "${_nn_build}"
         ${_gen_args}
         -DNORMNORM_BUILD_TESTS=OFF -DNORMNORM_BUILD_BENCHMARKS=OFF
         -DNORMNORM_BUILD_EXAMPLES=OFF -DNORMNORM_INSTALL=ON
         "-DCMAKE_INSTALL_PREFIX=${_prefix}")
  nn_run("build normnorm" "${CMAKE_COMMAND}" --build "${_nn_build}" ${_config_args})
  nn_run("install normnorm" "${CMAKE_COMMAND}" --install "${_nn_build}" --prefix "${_prefix}"
         ${_config_args})
  set(_expected_files include/normnorm/version.hpp
                      share/cmake/normnorm/normnormConfig.cmake
                      share/cmake/normnorm/normnormConfigVersion.cmake
                      share/cmake/normnorm/normnormTargets.cmake
                      share/cmake/normnorm/normnorm_xsimd_workaround.cmake)
  if(CONSUMER_MODE STREQUAL "find_package_mpi")
    list(APPEND _expected_files share/cmake/normnorm/normnormMpiTargets.cmake
                                include/normnorm/distributed/mpi.hpp)
  endif()
  foreach(_f IN LISTS _expected_files)
    if(NOT EXISTS "${_prefix}/${_f}")
      message(FATAL_ERROR "[${CONSUMER_MODE}] installed tree lacks ${_f}")
    endif()
  endforeach()
  # Only the prefix is passed: the consumer must not need normnorm's source.
  list(APPEND _consumer_args "-DCMAKE_PREFIX_PATH=${_prefix}"
                             -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  list(APPEND _consumer_args "-DNORMNORM_SOURCE_DIR=${NORMNORM_SOURCE_DIR}")
endif()

if(CONSUMER_MODE STREQUAL "find_package_mpi")
  # With MPI hidden from the consumer: a plain find_package(normnorm) still works, and
  # REQUIRED COMPONENTS mpi stops the configure with the package's reason.
  set(_no_mpi_build "${CONSUMER_BINARY_DIR}/build-without-mpi")
  message(STATUS "[${CONSUMER_MODE}] configure consumer without MPI (must fail at COMPONENTS mpi)")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${_no_mpi_build}"
                          ${_gen_args} ${_consumer_args} -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON
                          -DNORMNORM_CONSUMER_WITHOUT_MPI=ON
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  message("${_out}${_err}")
  if(_rc EQUAL 0)
    message(FATAL_ERROR "[${CONSUMER_MODE}] the configure without MPI succeeded")
  endif()
  if(NOT _out MATCHES "plain and optional find_package without MPI OK")
    message(FATAL_ERROR "[${CONSUMER_MODE}] without MPI, the configure failed before the REQUIRED COMPONENTS mpi request")
  endif()
  if(NOT _err MATCHES "required[ \n]+component[ \n]+mpi")
    message(FATAL_ERROR "[${CONSUMER_MODE}] without MPI, REQUIRED COMPONENTS mpi failed without the package's reason")
  endif()
endif()

nn_run("configure consumer" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${_consumer_build}"
       ${_gen_args} ${_consumer_args} "-DNORMNORM_EXPECTED_VERSION=${NORMNORM_EXPECTED_VERSION}")

if(_installed)
  # Make sure the package really came from our prefix, not from the system.
  file(STRINGS "${_consumer_build}/CMakeCache.txt" _dir_line REGEX "^normnorm_DIR:")
  string(REGEX REPLACE "^normnorm_DIR:[A-Z]+=" "" _found_dir "${_dir_line}")
  file(REAL_PATH "${_found_dir}" _found_dir)
  file(REAL_PATH "${_prefix}" _prefix_real)
  string(FIND "${_found_dir}" "${_prefix_real}/" _pos)
  if(NOT _pos EQUAL 0)
    message(FATAL_ERROR "[${CONSUMER_MODE}] normnorm was found in '${_found_dir}', not under '${_prefix_real}'")
  endif()
endif()

nn_run("build consumer" "${CMAKE_COMMAND}" --build "${_consumer_build}" ${_config_args})

# Locate the program (multi-config generators add a per-config folder).
set(_exe "")
foreach(_cand "${_consumer_build}/normnorm_consumer"
              "${_consumer_build}/${CONSUMER_BUILD_TYPE}/normnorm_consumer"
              "${_consumer_build}/normnorm_consumer.exe"
              "${_consumer_build}/${CONSUMER_BUILD_TYPE}/normnorm_consumer.exe")
  if(NOT _exe AND EXISTS "${_cand}" AND NOT IS_DIRECTORY "${_cand}")
    set(_exe "${_cand}")
  endif()
endforeach()
if(NOT _exe)
  message(FATAL_ERROR "[${CONSUMER_MODE}] built program normnorm_consumer not found in ${_consumer_build}")
endif()

# find_package_mpi runs its program directly, as one rank (MPI singleton init; the
# test sets Open MPI's run-as-root variables). The timeout guards against a hang there.
message(STATUS "[${CONSUMER_MODE}] run: ${_exe}")
execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 300)
message("${_out}${_err}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "[${CONSUMER_MODE}] normnorm_consumer exited with ${_rc}")
endif()
string(REPLACE "." "\\." _ver_re "${NORMNORM_EXPECTED_VERSION}")
if(NOT _out MATCHES "normnorm ${_ver_re}")
  message(FATAL_ERROR "[${CONSUMER_MODE}] expected 'normnorm ${NORMNORM_EXPECTED_VERSION}' in the output")
endif()
if(CONSUMER_MODE STREQUAL "export")
  # Its install carries normnorm's package next to its own.
  set(_prefix "${CONSUMER_BINARY_DIR}/prefix")
  nn_run("install consumer" "${CMAKE_COMMAND}" --install "${_consumer_build}" --prefix "${_prefix}" ${_config_args})
  foreach(_f share/cmake/consumer/consumerTargets.cmake share/cmake/normnorm/normnormConfig.cmake
             share/cmake/normnorm/normnormTargets.cmake include/normnorm/normnorm.hpp)
    if(NOT EXISTS "${_prefix}/${_f}")
      message(FATAL_ERROR "[export] installed tree lacks ${_f}")
    endif()
  endforeach()
endif()

message(STATUS "[${CONSUMER_MODE}] OK")
