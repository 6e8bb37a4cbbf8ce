#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the wasm32 target of the
# pinned toolchain, binaryen's wasm-opt (Debian package; the worker canister
# is optimised with it) and the Python venv used by the model scripts.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  # rust-toolchain.toml pins the toolchain; make sure its wasm32 target is there.
  rustup target add wasm32-unknown-unknown >/dev/null
fi
if ! command -v wasm-opt >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y binaryen >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y binaryen >/dev/null; }
fi
# Vulkan for frontend/gpu's tests: Mesa's lavapipe runs the WGSL compute
# shaders on the CPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 \
  || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y mesa-vulkan-drivers libvulkan1 >/dev/null; }
fi
scripts/setup_venv.sh
