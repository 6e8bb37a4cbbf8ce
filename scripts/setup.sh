#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the wasm32 target of the
# pinned toolchain, binaryen's wasm-opt (Debian package; the worker canister
# is optimised with it), Mesa's Vulkan drivers (lavapipe: frontend/gpu's
# tests), Debian's chromium (the chat UI's end-to-end tests
# drive it: frontend/app/e2e) and the Python venv used by the model scripts.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  # rust-toolchain.toml pins the toolchain; make sure its wasm32 target is there.
  rustup target add wasm32-unknown-unknown >/dev/null
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
# Installs Debian packages, updating the package lists first when needed.
apt_install() {
  $sudo apt-get install -y "$@" >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "$@" >/dev/null; }
}
command -v wasm-opt >/dev/null 2>&1 || apt_install binaryen
[ -x /usr/bin/chromium ] || apt_install chromium
# Vulkan for frontend/gpu's tests: Mesa's lavapipe runs the WGSL compute
# shaders on the CPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 \
  || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  apt_install mesa-vulkan-drivers libvulkan1
fi
scripts/setup_venv.sh
