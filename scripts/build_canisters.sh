#!/usr/bin/env bash
# Builds the canisters as they ship: wasm32, the checked-in candid
# interface embedded as `icp:public candid:service` metadata. The task
# manager uses the `canister` profile (LTO, optimised for size); the worker,
# which links tract, the `release` profile (optimised for speed: its cost is
# instructions per token; sharing the release build of the engine keeps CI
# within its time). Output:
# target/canisters/<name>.wasm (or $CARGO_TARGET_DIR/canisters). dfx.json
# runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# canister:profile
CANISTERS=(task_manager:canister worker:release example_caller:canister)
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
