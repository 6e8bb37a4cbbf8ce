#!/usr/bin/env bash
# Builds the canisters as they ship: wasm32, the `canister` profile (LTO,
# symbols stripped), the checked-in candid interface embedded as
# `icp:public candid:service` metadata. The task manager is optimised for
# size (opt-level z); the worker, which links tract, keeps opt-level 3: its
# cost is instructions per token. Output:
# target/canisters/<name>.wasm (or $CARGO_TARGET_DIR/canisters). dfx.json
# runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# canister:profile
CANISTERS=(task_manager:canister worker:canister example_caller:canister)
TARGET="${CARGO_TARGET_DIR:-target}"
OUT="$TARGET/canisters"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

did_of() {
  case "$1" in
    example_caller) echo canisters/examples/caller/example_caller.did ;;
    *) echo "canisters/$1/api/$1.did" ;;
  esac
}

mkdir -p "$OUT"
for entry in "${CANISTERS[@]}"; do
  c="${entry%%:*}"
  profile="${entry##*:}"
  cargo build --target wasm32-unknown-unknown --profile "$profile" -p "$c"
  "$PY" scripts/wasm_metadata.py \
    "$TARGET/wasm32-unknown-unknown/$profile/$c.wasm" "$OUT/$c.wasm" \
    --public "candid:service=$(did_of "$c")"
  echo "$OUT/$c.wasm $(stat -c %s "$OUT/$c.wasm") bytes"
done
