#!/usr/bin/env bash
# Builds the canisters as they ship: wasm32, the `canister` profile (LTO,
# symbols stripped), the checked-in candid interface embedded as
# `icp:public candid:service` metadata. Everything is optimised for size
# (opt-level z) except tract's kernels (tract-linalg, opt-level 3: the
# worker's cost is instructions per token); the worker then goes through
# binaryen's `wasm-opt -Oz` and `wasm-fold` (load offsets) and must keep its
# code section at most 9 MiB,
# a margin of 1 MiB under the IC's limit of 10 MiB.
#
#   scripts/build_canisters.sh                 all of them
#   scripts/build_canisters.sh task_manager    only the named ones
#   scripts/build_canisters.sh --list          each name and module path; builds nothing
#
# Output: ${CARGO_TARGET_DIR:-target}/canisters/<name>.wasm. When
# CARGO_TARGET_DIR is elsewhere the module is also copied to
# target/canisters/<name>.wasm in the project, where dfx.json and icp.yaml
# (which run this script) read it.
set -euo pipefail
cd "$(dirname "$0")/.."

CANISTERS=(task_manager worker example_caller)
TARGET="${CARGO_TARGET_DIR:-target}"
OUT="$TARGET/canisters"
PROJECT_OUT=target/canisters
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

# The largest code section shipped: the IC's 10 MiB less a 1 MiB margin.
MAX_CODE_SECTION=$((9 * 1024 * 1024))
# The wasm features the IC accepts (binaryen must not use others).
WASM_OPT_FEATURES=(--enable-simd --enable-bulk-memory --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-mutable-globals
  --enable-multivalue --enable-reference-types)

# build PACKAGE PROFILE DID [wasm-opt]: cargo, then (unless nothing it is
# made from changed) binaryen's wasm-opt -Oz if asked, the interface as
# metadata and the code-section check, then the copy in the project.
build() {
  local c=$1 profile=$2 did=$3 opt=${4:-}
  cargo build --target wasm32-unknown-unknown --profile "$profile" -p "$c"
  local module="$TARGET/wasm32-unknown-unknown/$profile/$c.wasm"
  # What the shipped module is made from: cargo's module, the interface
  # and every step after cargo. When none changed, the shipped module is
  # reused (wasm-opt -Oz alone takes over a minute on the worker, and
  # every test process asks for the modules).
  # The paths are the project's (the script runs from its root, however it
  # was invoked), and binaryen's version counts when it runs.
  local key tools=""
  [ "$opt" = wasm-opt ] && tools="$(wasm-opt --version 2>/dev/null || true)"
  key="$(cat "$module" "$did" scripts/build_canisters.sh scripts/wasm_metadata.py \
    scripts/wasm_code_section.py crates/wasm_fold/Cargo.toml crates/wasm_fold/src/*.rs |
    sha256sum | cut -d' ' -f1) $opt $tools"
  if [ -f "$OUT/$c.wasm" ] && [ "$(cat "$OUT/.$c.key" 2>/dev/null)" = "$key" ]; then
    echo "$OUT/$c.wasm is up to date"
  else
    postprocess "$c" "$did" "$opt" "$module"
    echo "$key" >"$OUT/.$c.key"
  fi
  if [ "$(realpath -m "$OUT")" != "$(realpath -m "$PROJECT_OUT")" ] &&
    ! cmp -s "$OUT/$c.wasm" "$PROJECT_OUT/$c.wasm"; then
    mkdir -p "$PROJECT_OUT"
    cp "$OUT/$c.wasm" "$PROJECT_OUT/.$c.$$.wasm"
    mv -f "$PROJECT_OUT/.$c.$$.wasm" "$PROJECT_OUT/$c.wasm"
    echo "copied to $PROJECT_OUT/$c.wasm"
  fi
}

# postprocess PACKAGE DID OPT MODULE: wasm-opt and wasm-fold (when OPT is
# wasm-opt), the interface as metadata, the code-section check, into
# $OUT/PACKAGE.wasm.
postprocess() {
  local c=$1 did=$2 opt=$3 module=$4
  # Intermediate files carry this process's id and the module appears by
  # rename, so that a reader never sees half a module.
  local tmp="$OUT/.$c.$$"
  if [ "$opt" = wasm-opt ]; then
    if ! command -v wasm-opt >/dev/null; then
      echo "build_canisters.sh: wasm-opt (binaryen) is missing; scripts/setup.sh installs it" >&2
      exit 1
    fi
    # --low-memory-unused: binaryen folds constant address additions into
    # the offsets of plain loads and stores; wasm-fold then does the same
    # for the SIMD loads binaryen leaves alone (crates/wasm_fold).
    wasm-opt -Oz --low-memory-unused "${WASM_OPT_FEATURES[@]}" "$module" -o "$tmp.opt.wasm"
    cargo run --release -q -p wasm_fold -- "$tmp.opt.wasm" "$tmp.fold.wasm"
    mv -f "$tmp.fold.wasm" "$tmp.opt.wasm"
    module="$tmp.opt.wasm"
  fi
  "$PY" scripts/wasm_metadata.py "$module" "$tmp.wasm" \
    --public "candid:service=$did"
  rm -f "$tmp.opt.wasm"
  "$PY" scripts/wasm_code_section.py "$tmp.wasm" --max-bytes "$MAX_CODE_SECTION"
  mv -f "$tmp.wasm" "$OUT/$c.wasm"
  echo "$OUT/$c.wasm $(stat -c %s "$OUT/$c.wasm") bytes"
}

build_task_manager() {
  build task_manager canister canisters/task_manager/api/task_manager.did
}

build_worker() {
  build worker canister canisters/worker/api/worker.did wasm-opt
}

build_example_caller() {
  build example_caller canister canisters/examples/caller/example_caller.did
}

if [ "${1:-}" = --list ]; then
  for c in "${CANISTERS[@]}"; do echo "$c $PROJECT_OUT/$c.wasm"; done
  exit 0
fi

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${CANISTERS[@]}")
for c in "${names[@]}"; do
  if [[ " ${CANISTERS[*]} " != *" $c "* ]]; then
    echo "build_canisters.sh: unknown canister '$c'; the canisters are: ${CANISTERS[*]}" >&2
    exit 2
  fi
done
# One build at a time per target directory (tests build in parallel).
mkdir -p "$OUT"
exec 9>"$OUT/.build.lock"
flock 9
trap 'rm -f "$OUT"/.*.$$.wasm "$OUT"/.*.$$.opt.wasm' EXIT
for c in "${names[@]}"; do
  "build_$c"
done
