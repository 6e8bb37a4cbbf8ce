#!/usr/bin/env bash
# Builds the browser package of the WebGPU forward pass: frontend/gpu/pkg/
# (gpu.js + gpu_bg.wasm, `wasm-bindgen --target web`), which the chat UI's
# WebGPU worker bundles (frontend/app/src/local/gpu.worker.ts).
#
# One release build for wasm32-unknown-unknown, wgpu with its WebGPU
# backend only (Cargo.toml). The crate stays an rlib natively: the cdylib
# is asked for here (`cargo rustc --crate-type cdylib`). wasm-bindgen-cli
# must have the version the crate pins: it is installed (cargo install,
# under the target directory, where frontend/engine_web/build.sh puts it
# too) when missing or at another version. Environment: CARGO_TARGET_DIR
# (default <root>/target), WASM_BINDGEN (a wasm-bindgen binary to use).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

# The version the crate pins (`wasm-bindgen = "=X.Y.Z"`).
VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$HERE/Cargo.toml")
[ -n "$VERSION" ] || { echo "gpu: no exact wasm-bindgen version in Cargo.toml" >&2; exit 1; }

version_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }
BINDGEN="${WASM_BINDGEN:-}"
if [ -z "$BINDGEN" ]; then
  for candidate in "$TARGET/tools/bin/wasm-bindgen" "$(command -v wasm-bindgen || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(version_of "$candidate")" = "$VERSION" ]; then
      BINDGEN="$candidate"
      break
    fi
  done
fi
if [ -z "$BINDGEN" ]; then
  echo "gpu: installing wasm-bindgen-cli $VERSION under $TARGET/tools"
  CARGO_TARGET_DIR="$TARGET/tools/build" cargo install wasm-bindgen-cli --version "$VERSION" --root "$TARGET/tools"
  BINDGEN="$TARGET/tools/bin/wasm-bindgen"
fi
[ "$(version_of "$BINDGEN")" = "$VERSION" ] || {
  echo "gpu: $BINDGEN is wasm-bindgen $(version_of "$BINDGEN"), the crate needs $VERSION" >&2
  exit 1
}

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# SIMD and the getrandom backend come from .cargo/config.toml.
cargo rustc --target wasm32-unknown-unknown --release -p gpu --lib --crate-type cdylib
rm -rf "$HERE/pkg"
"$BINDGEN" --target web --remove-name-section --remove-producers-section --out-dir "$HERE/pkg" "$TARGET/wasm32-unknown-unknown/release/gpu.wasm"
echo "gpu: $HERE/pkg ($(du -h "$HERE/pkg/gpu_bg.wasm" | cut -f1) of wasm)"
