#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine, idempotent and quick when already done:
# system packages only where missing (libtorch only when none is found), npm ci (which builds the
# native addon), and the TypeScript build. Nothing is downloaded from outside apt and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing $*, and this is not a Debian/Ubuntu machine: install them yourself" >&2
    exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  echo "setup: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_libtorch() {
  [ -n "${LIBTORCH:-}" ] && return 0
  [ -n "${Torch_DIR:-}" ] && return 0
  python3 -c "import torch, os, sys; sys.exit(0 if os.path.exists(os.path.join(torch.utils.cmake_prefix_path, 'Torch', 'TorchConfig.cmake')) else 1)" >/dev/null 2>&1 && return 0
  for f in /usr/lib/*/cmake/Torch/TorchConfig.cmake /usr/lib/cmake/Torch/TorchConfig.cmake /usr/local/share/cmake/Torch/TorchConfig.cmake; do
    [ -f "$f" ] && return 0
  done
  return 1
}

pkgs=()
command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
command -v make >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || pkgs+=(make)
[ -f /usr/include/jpeglib.h ] || pkgs+=(libjpeg-dev)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)  # headless browser of the report test (playwright-core drives it; it never downloads one)
if ! have_libtorch; then
  pkgs+=(libtorch-dev libopenblas0-openmp libgloo-dev)
fi
if [ -f /usr/include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp ] && [ ! -f /usr/include/gloo/context.h ]; then
  pkgs+=(libgloo-dev)  # gloo's headers: data-parallel training (c10d) with Debian's libtorch
fi
if command -v dpkg >/dev/null 2>&1 && dpkg -s libtorch-dev >/dev/null 2>&1 && ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then
  pkgs+=(libopenblas0-openmp)  # without it Debian's libtorch uses the slow reference BLAS
fi
if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}"; fi

# onnxruntime-node (a devDependency, for the ONNX export tests) would download CUDA binaries from
# outside the npm registry in its install script where npm runs dependency scripts: skip that.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  node scripts/build-native.js
fi
npx tsc -p tsconfig.json
echo "setup: ready ($(node dist/bin/cifake.js info | head -2 | tail -1))"
