#!/usr/bin/env bash
# Compile time of a translation unit using normnorm, header-only and with the kernels
# from normnorm::compiled (NORMNORM_EXTERN_TEMPLATES). docs/integration.md quotes it.
#
#   bench/compile_time/measure.sh [compiler] [repeats]     (default: g++, 3)
#
# Each line: the median over the repeats of wall time and of CPU time (user + sys;
# less sensitive to other load on the machine), with the load average before the runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cxx="${1:-g++}"
repeats="${2:-3}"
flags=(-std=c++17 -O2 -I"$root/include" -isystem /usr/include/eigen3 -c -o /dev/null)
one="$root/bench/compile_time/one_form.cpp"
all="$root/tests/warnings/all_forms.cpp"
lib="$root/src/compiled.cpp"

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

measure() {  # label, then the compiler arguments after the common flags
  local label="$1"; shift
  local walls=() cpus=() load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  for _ in $(seq "$repeats"); do
    local out
    out="$( { /usr/bin/time -f '%e %U %S' "$cxx" "${flags[@]}" "$@" 2>&1 >/dev/null; } | tail -1)"
    walls+=("$(awk '{print $1}' <<<"$out")")
    cpus+=("$(awk '{printf "%.2f", $2 + $3}' <<<"$out")")
  done
  printf '| %-52s | %6s s | %6s s | %s |\n' "$label" \
    "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" "$load"
}

echo "compiler: $("$cxx" --version | head -1); -O2; median of $repeats"
printf '| %-52s | %8s | %8s | %s |\n' "translation unit" "wall" "CPU" "load before"
measure "one form (BatchNormalNorm2d<float>), header-only" "$one"
measure "one form, NORMNORM_EXTERN_TEMPLATES" -DNORMNORM_EXTERN_TEMPLATES "$one"
measure "5 forms x float, double, header-only" "$all"
measure "5 forms x float, double, NORMNORM_EXTERN_TEMPLATES" -DNORMNORM_EXTERN_TEMPLATES "$all"
measure "src/compiled.cpp (normnorm::compiled, once)" "$lib"
