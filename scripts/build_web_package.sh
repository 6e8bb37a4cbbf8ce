#!/usr/bin/env bash
# Builds the browser package of one of the chat UI's local backends:
# DIR/pkg/ (PACKAGE.js + PACKAGE_bg.wasm, `wasm-bindgen --target web`).
#
#   scripts/build_web_package.sh frontend/engine_web engine_web   the tract engine (CPU path)
#   scripts/build_web_package.sh frontend/gpu gpu                 the WGSL forward pass (WebGPU)
#
# One release build for wasm32-unknown-unknown (SIMD and the getrandom
# backend come from .cargo/config.toml); the cdylib is asked for here
# (`cargo rustc --crate-type cdylib`), so that natively a crate can stay an
# rlib. wasm-bindgen-cli must have the version the crate pins (`wasm-bindgen
# = "=X.Y.Z"` in DIR/Cargo.toml): it is installed (cargo install, under the
# target directory, shared by both packages) when missing or at another
# version. Environment: CARGO_TARGET_DIR (default <root>/target),
# WASM_BINDGEN (a wasm-bindgen binary to use).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/build_web_package.sh DIR PACKAGE" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DIR="$ROOT/$1"
PACKAGE="$2"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$DIR/Cargo.toml")
[ -n "$VERSION" ] || { echo "$PACKAGE: no exact wasm-bindgen version in $1/Cargo.toml" >&2; exit 1; }

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
  echo "$PACKAGE: installing wasm-bindgen-cli $VERSION under $TARGET/tools"
  CARGO_TARGET_DIR="$TARGET/tools/build" cargo install wasm-bindgen-cli --version "$VERSION" --root "$TARGET/tools"
  BINDGEN="$TARGET/tools/bin/wasm-bindgen"
fi
[ "$(version_of "$BINDGEN")" = "$VERSION" ] || {
  echo "$PACKAGE: $BINDGEN is wasm-bindgen $(version_of "$BINDGEN"), the crate needs $VERSION" >&2
  exit 1
}

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo rustc --target wasm32-unknown-unknown --release -p "$PACKAGE" --lib --crate-type cdylib
rm -rf "$DIR/pkg"
"$BINDGEN" --target web --remove-name-section --remove-producers-section --out-dir "$DIR/pkg" \
  "$TARGET/wasm32-unknown-unknown/release/$PACKAGE.wasm"
echo "$PACKAGE: $DIR/pkg ($(du -h "$DIR/pkg/${PACKAGE}_bg.wasm" | cut -f1) of wasm)"
