#!/usr/bin/env bash
# Builds the canisters as they ship: wasm32, the `canister` profile (LTO;
# the task manager optimised for size), the checked-in candid interface
# embedded as `icp:public candid:service` metadata. Output:
# target/canisters/<name>.wasm (or $CARGO_TARGET_DIR/canisters). dfx.json
# runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

CANISTERS=(task_manager)
TARGET="${CARGO_TARGET_DIR:-target}"
OUT="$TARGET/canisters"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

args=()
for c in "${CANISTERS[@]}"; do args+=(-p "$c"); done
cargo build --target wasm32-unknown-unknown --profile canister "${args[@]}"

mkdir -p "$OUT"
for c in "${CANISTERS[@]}"; do
  "$PY" scripts/wasm_metadata.py \
    "$TARGET/wasm32-unknown-unknown/canister/$c.wasm" "$OUT/$c.wasm" \
    --public "candid:service=canisters/$c/api/$c.did"
  echo "$OUT/$c.wasm $(stat -c %s "$OUT/$c.wasm") bytes"
done
