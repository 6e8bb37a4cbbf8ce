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
scripts/setup_venv.sh
