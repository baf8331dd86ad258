#!/usr/bin/env bash
# Installs what SecureRouter needs on a fresh Debian machine (idempotent):
# OpenBLAS, HDF5 (library and tools) through apt, h5py and NumPy for the
# interop checks through pip. Then builds the CLI in release mode.
# Usage: scripts/setup.sh [--debug]   (prints what it does on stderr)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libopenblas-dev libhdf5-dev hdf5-tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if command -v python3 >/dev/null 2>&1; then
  if ! python3 -c "import h5py, numpy" >/dev/null 2>&1; then
    echo "setup: installing h5py and numpy with pip" >&2
    python3 -m pip install -q h5py numpy >&2 || echo "setup: warning: pip could not install h5py/numpy; interop tests will be skipped" >&2
  fi
else
  echo "setup: warning: python3 not found; data fetch and interop tests need it" >&2
fi

if [ "${1:-}" != "--no-build" ]; then
  echo "setup: building securerouter (release)" >&2
  swift build -c release --product securerouter >&2
fi
