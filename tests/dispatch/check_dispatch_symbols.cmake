# ctest: dispatch_symbols. Fails when two objects of the dispatch archive
# (tests/CMakeLists.txt: normnorm_dispatch_archive) define one linker name with
# code, which the linker would then take from one object for all of them:
#  * between two dispatch targets (sse2, avx2, avx512: different -m flags), any
#    symbol with code at all;
#  * between the native object (built with the archive's own flags) and a
#    dispatch target, any such symbol that names normnorm (its functions, or
#    std:: / Eigen code instantiated over its types).
# Run as: cmake -DNM=<nm> -DARCHIVE=<lib.a> -P check_dispatch_symbols.cmake

cmake_minimum_required(VERSION 3.16)  # list(FILTER), IN_LIST, kept empty list elements

foreach(var NM ARCHIVE)
  if(NOT ${var})
    message(FATAL_ERROR "check_dispatch_symbols: -D${var}= is required")
  endif()
endforeach()

# -A: archive:member: before every line; -p: nm's own order, so the mangled and
# the demangled lists pair up line by line.
execute_process(COMMAND "${NM}" -A -p --defined-only "${ARCHIVE}" OUTPUT_VARIABLE mangled RESULT_VARIABLE rc_mangled)
execute_process(COMMAND "${NM}" -A -p -C --defined-only "${ARCHIVE}" OUTPUT_VARIABLE demangled RESULT_VARIABLE rc_demangled)
if(NOT rc_mangled EQUAL 0 OR NOT rc_demangled EQUAL 0)
  message(FATAL_ERROR "check_dispatch_symbols: ${NM} failed on ${ARCHIVE}")
endif()
string(REPLACE ";" "\\;" mangled "${mangled}")
string(REPLACE ";" "\\;" demangled "${demangled}")
string(REPLACE "\n" ";" mangled "${mangled}")
string(REPLACE "\n" ";" demangled "${demangled}")
list(LENGTH mangled line_count)
list(LENGTH demangled demangled_count)
if(NOT line_count EQUAL demangled_count)
  message(FATAL_ERROR "check_dispatch_symbols: nm and nm -C listed different symbol counts")
endif()

# Code symbols (T: global text, W: weak text, i: indirect function) per member.
set(members "")
math(EXPR last "${line_count} - 1")
foreach(i RANGE ${last})
  list(GET mangled ${i} line)
  if(NOT line MATCHES "^[^:]*:([^:]*): *[0-9a-fA-F]* ([TWi]) (.*)$")
    continue()
  endif()
  set(member "${CMAKE_MATCH_1}")
  set(symbol "${CMAKE_MATCH_3}")
  list(GET demangled ${i} pretty)
  string(REGEX REPLACE "^[^:]*:[^:]*: *[0-9a-fA-F]* [TWi] " "" pretty "${pretty}")  # GNU nm: "a:m:addr", llvm-nm: "a:m: addr"
  string(MAKE_C_IDENTIFIER "${member}" key)
  if(NOT key IN_LIST members)
    list(APPEND members ${key})
    set(name_${key} "${member}")
  endif()
  list(APPEND symbols_${key} "${symbol}")
  set("pretty_${symbol}" "${pretty}")
endforeach()

set(dispatch_keys "")
set(native_keys "")
foreach(key IN LISTS members)
  if(name_${key} MATCHES "(sse2|avx2|avx512)\\.cpp\\.o(bj)?$")
    list(APPEND dispatch_keys ${key})
  else()
    list(APPEND native_keys ${key})
  endif()
endforeach()
list(LENGTH dispatch_keys dispatch_count)
if(dispatch_count LESS 2)
  message(FATAL_ERROR "check_dispatch_symbols: expected the dispatch objects in ${ARCHIVE}, found: ${members}")
endif()

set(failures "")
set(normnorm_count 0)
set(over_normnorm_count 0)
set(other_count 0)
# report(<symbol> <where>): one shared symbol, counted by kind.
macro(report symbol where)
  set(pretty "${pretty_${symbol}}")
  if(pretty MATCHES "^normnorm::" OR pretty MATCHES "^[^(]* normnorm::[^(]*\\(")
    math(EXPR normnorm_count "${normnorm_count} + 1")
  elseif(pretty MATCHES "normnorm::")
    math(EXPR over_normnorm_count "${over_normnorm_count} + 1")
  else()
    math(EXPR other_count "${other_count} + 1")
  endif()
  list(APPEND failures "${where}: ${pretty}")
endmacro()

list(LENGTH dispatch_keys n)
math(EXPR n_last "${n} - 1")
foreach(a RANGE ${n_last})
  list(GET dispatch_keys ${a} key_a)
  math(EXPR b_first "${a} + 1")
  if(b_first GREATER n_last)
    continue()
  endif()
  foreach(b RANGE ${b_first} ${n_last})
    list(GET dispatch_keys ${b} key_b)
    set(common ${symbols_${key_a}})
    list(FILTER common INCLUDE REGEX ".")
    foreach(symbol IN LISTS common)
      if(symbol IN_LIST symbols_${key_b})
        report("${symbol}" "${name_${key_a}} and ${name_${key_b}}")
      endif()
    endforeach()
  endforeach()
endforeach()
foreach(key_n IN LISTS native_keys)
  foreach(key_d IN LISTS dispatch_keys)
    foreach(symbol IN LISTS symbols_${key_n})
      if(symbol IN_LIST symbols_${key_d} AND "${pretty_${symbol}}" MATCHES "normnorm")
        report("${symbol}" "${name_${key_n}} and ${name_${key_d}}")
      endif()
    endforeach()
  endforeach()
endforeach()

list(LENGTH failures failure_count)
foreach(key IN LISTS members)
  list(LENGTH symbols_${key} count)
  message(STATUS "${name_${key}}: ${count} code symbols")
endforeach()
if(failure_count GREATER 0)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "check_dispatch_symbols: ${failure_count} code symbols defined in two objects "
                      "(${normnorm_count} of normnorm, ${over_normnorm_count} std::/Eigen code over normnorm types, "
                      "${other_count} other):\n  ${text}")
endif()
message(STATUS "check_dispatch_symbols: no code symbol is defined in two objects")
