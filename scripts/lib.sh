#!/usr/bin/env bash
# Shared helpers for scripts/demo and scripts/test. Source it, don't run it.
# Everything here is idempotent: a second run skips what is already done.

# Repository root (this file lives in <root>/scripts/).
NORMNORM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build directory; override with NORMNORM_BUILD_DIR=... if you want another one.
NORMNORM_BUILD_DIR="${NORMNORM_BUILD_DIR:-${NORMNORM_ROOT}/build}"

# Debian 12 packages needed to build, test, benchmark and run the examples
# (libzip-dev and nlohmann-json3-dev: the optional normnorm::io; clang: the warnings.clang.* tests).
NORMNORM_DEB_PACKAGES=(
  g++ cmake make pkg-config
  libeigen3-dev libxsimd-dev
  catch2 librandom123-dev libbenchmark-dev zlib1g-dev
  libzip-dev nlohmann-json3-dev clang
  # The PyTorch integration (integrations/torch) and its tests: libtorch-dev has
  # TorchConfig.cmake, python3-torch the same 1.13.1 build for Python; the libtorch
  # example trains on Fashion-MNIST.
  libtorch-dev python3-torch python3-numpy dataset-fashion-mnist
  # SyncBatchNormalNorm's bridge from a torch.distributed process group to the ops
  # (integrations/torch/src/process_group_python.cpp) is a Python extension module.
  python3-dev pybind11-dev
  # The optional normnorm::mpi (distributed batch statistics, docs/distributed.md) and its tests.
  openmpi-bin libopenmpi-dev
)

# Extra packages for the sanitizer and fuzzing stages of scripts/test: Clang 14 with
# its runtime libraries (ASan, UBSan, TSan, libFuzzer) and llvm-symbolizer.
# shellcheck disable=SC2034  # used by scripts/test
NORMNORM_SANITIZER_DEB_PACKAGES=(clang libclang-rt-14-dev llvm)
# Run-time needs of the Fashion-MNIST demo (scripts/demo installs them): the data set and
# gnuplot for the report's plots.
# shellcheck disable=SC2034  # used by scripts/demo
NORMNORM_DEMO_DEB_PACKAGES=(dataset-fashion-mnist gnuplot-nox)
# The compiler of the sanitizer and fuzzing trees.
NORMNORM_CLANGXX="${NORMNORM_CLANGXX:-clang++-14}"

nn_log() { printf '==> %s\n' "$*" >&2; }
nn_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Number of parallel jobs: every core the machine has.
nn_jobs() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2; }

# True when Debian package $1 is installed (not merely known, or removed with
# only its config files left behind).
nn_pkg_installed() {
  local info
  info="$(dpkg -s "$1" 2>/dev/null)" || return 1
  grep -q '^Status: install ok installed$' <<<"$info"
}

# Install whichever of NORMNORM_DEB_PACKAGES (and of any packages given as
# arguments) are missing. Runs apt-get (update, then install) only if at least
# one is missing.
nn_install_deps() {
  local wanted=("${NORMNORM_DEB_PACKAGES[@]}" "$@")
  if ! command -v dpkg >/dev/null 2>&1; then
    nn_log "not a Debian-based system (no dpkg): skipping package installation;"
    nn_log "make sure these are installed: ${wanted[*]}"
    return 0
  fi

  local missing=() pkg
  for pkg in "${wanted[@]}"; do
    nn_pkg_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    nn_log "all required packages are installed"
    return 0
  fi

  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      nn_die "missing packages (${missing[*]}) and not root, and sudo is not available"
    sudo=(sudo)
  fi

  nn_log "installing missing packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Configure the build directory, only if it has not been configured yet.
# Extra arguments are passed to cmake (first configure only).
nn_configure() {
  if [ -f "${NORMNORM_BUILD_DIR}/CMakeCache.txt" ]; then
    nn_log "already configured: ${NORMNORM_BUILD_DIR}"
    return 0
  fi
  nn_log "configuring ${NORMNORM_BUILD_DIR}"
  cmake -S "${NORMNORM_ROOT}" -B "${NORMNORM_BUILD_DIR}" -DCMAKE_BUILD_TYPE=Release "$@"
}

# Configure build directory $1 with the remaining arguments, only if it has not
# been configured yet (scripts/test's sanitizer and fuzzing trees).
nn_configure_tree() {
  local dir="$1"
  shift
  if [ -f "${dir}/CMakeCache.txt" ]; then
    nn_log "already configured: ${dir}"
    return 0
  fi
  nn_log "configuring ${dir}"
  cmake -S "${NORMNORM_ROOT}" -B "${dir}" "$@"
}

# Runtime options of the sanitizers: every report is fatal and fails the test,
# with symbolized stack traces.
nn_sanitizer_env() {
  local symbolizer
  symbolizer="$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)"
  if [ -n "${symbolizer}" ]; then
    export ASAN_SYMBOLIZER_PATH="${symbolizer}" TSAN_SYMBOLIZER_PATH="${symbolizer}"
    export UBSAN_SYMBOLIZER_PATH="${symbolizer}"
  fi
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:halt_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
}

# Clang 14's sanitizer runtimes cannot map their shadow memory when the kernel
# randomizes mmap with more than 28 bits (newer kernels default to 32): run them
# with address-space randomization off there. Prints the prefix command, if any.
nn_sanitizer_launcher() {
  local bits
  bits="$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)"
  if [ "${bits}" -gt 28 ] && command -v setarch >/dev/null 2>&1; then
    echo "setarch $(uname -m) -R"
  fi
}
