#!/usr/bin/env bash
# Shared helpers for scripts/demo and scripts/test. Source it, don't run it.
# Everything here is idempotent: a second run skips what is already done.

# Repository root (this file lives in <root>/scripts/).
NORMNORM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build directory; override with NORMNORM_BUILD_DIR=... if you want another one.
NORMNORM_BUILD_DIR="${NORMNORM_BUILD_DIR:-${NORMNORM_ROOT}/build}"

# Debian 12 packages needed to build, test, benchmark and run the examples.
NORMNORM_DEB_PACKAGES=(
  g++ cmake make pkg-config
  libeigen3-dev libxsimd-dev
  catch2 librandom123-dev libbenchmark-dev zlib1g-dev
)

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

# Install whichever of NORMNORM_DEB_PACKAGES are missing. Runs apt-get (update,
# then install) only if at least one is missing.
nn_install_deps() {
  if ! command -v dpkg >/dev/null 2>&1; then
    nn_log "not a Debian-based system (no dpkg): skipping package installation;"
    nn_log "make sure these are installed: ${NORMNORM_DEB_PACKAGES[*]}"
    return 0
  fi

  local missing=() pkg
  for pkg in "${NORMNORM_DEB_PACKAGES[@]}"; do
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
