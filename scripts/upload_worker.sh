#!/usr/bin/env bash
# Uploads the worker module to a deployed task manager, which installs it in
# the workers it spawns (`spawn_workers`): pieces of at most 1 MiB, one
# `upload_worker_wasm` call each (scripts/worker_wasm_args.py writes their
# candid arguments), then checks the task manager's SHA-256 of what it holds.
#
#   scripts/upload_worker.sh [--network NAME] [--wasm FILE]     with dfx
#   scripts/upload_worker.sh --icp [--environment NAME] [--wasm FILE]
#
# Without --wasm it builds target/canisters/worker.wasm first
# (scripts/build_canisters.sh worker). A plain module is gzip-compressed
# before it is sent (the IC installs compressed modules: the 9.9 MB worker becomes
# 3.2 MB, fewer calls and chunks). The caller must be a controller of the task
# manager.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/upload_worker.sh [--network NAME] [--wasm FILE]" >&2
  echo "       scripts/upload_worker.sh --icp [--environment NAME] [--wasm FILE]" >&2
  exit 2
}

tool=dfx
target=()
wasm=
while [ $# -gt 0 ]; do
  case "$1" in
    --network) [ $# -ge 2 ] || usage; target=(--network "$2"); shift 2 ;;
    --icp) tool=icp; shift ;;
    -e|--environment) [ $# -ge 2 ] || usage; target=(--environment "$2"); shift 2 ;;
    --wasm) [ $# -ge 2 ] || usage; wasm=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "upload_worker.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
if [ "$tool" = dfx ] && [ "${target[0]:-}" = --environment ]; then
  echo "upload_worker.sh: --environment is for --icp; dfx takes --network" >&2
  exit 2
fi
if [ "$tool" = icp ] && [ "${target[0]:-}" = --network ]; then
  echo "upload_worker.sh: icp-cli targets an environment (--environment NAME)" >&2
  exit 2
fi
case "$wasm" in
  ""|/*) ;;
  *) wasm="$caller_dir/$wasm" ;;
esac
command -v "$tool" >/dev/null || { echo "upload_worker.sh: $tool is not installed" >&2; exit 1; }

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

if [ -z "$wasm" ]; then
  scripts/build_canisters.sh worker
  wasm=target/canisters/worker.wasm
fi

# call FILE: one upload_worker_wasm call with the argument in FILE.
call() {
  if [ "$tool" = dfx ]; then
    dfx canister call ${target[@]+"${target[@]}"} task_manager upload_worker_wasm --argument-file "$1"
  else
    icp canister call ${target[@]+"${target[@]}"} task_manager upload_worker_wasm --args-file "$1"
  fi
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ "$(head -c 4 "$wasm" | od -An -tx1 | tr -d ' \n')" = 0061736d ]; then
  gzip -9 -n -c "$wasm" > "$dir/worker.wasm.gz"
  echo "upload_worker.sh: $(wc -c < "$wasm" | tr -d " ") bytes, $(wc -c < "$dir/worker.wasm.gz" | tr -d " ") gzip-compressed"
  wasm="$dir/worker.wasm.gz"
fi
"$PY" scripts/worker_wasm_args.py "$wasm" "$dir" > "$dir/pieces"
total=$(wc -c < "$wasm" | tr -d " ")
n=$(wc -l < "$dir/pieces")
i=0
while read -r file offset size; do
  i=$((i + 1))
  echo "upload_worker_wasm: piece $i/$n (bytes $offset..$((offset + size)) of $total)"
  if ! reply=$(call "$file" < /dev/null); then
    echo "upload_worker.sh: piece $i failed" >&2
    exit 1
  fi
  case "$reply" in
    *"Ok ="*) ;;
    *) echo "$reply" >&2; echo "upload_worker.sh: piece $i failed" >&2; exit 1 ;;
  esac
done < "$dir/pieces"

want=$("$PY" scripts/worker_wasm_args.py --sha256 "$wasm")
echo "$reply"
if [[ "$reply" != *"$want"* ]]; then
  echo "upload_worker.sh: the task manager's SHA-256 is not $want (the module's)" >&2
  exit 1
fi
echo "uploaded $wasm ($total bytes, sha256 $want); now spawn_workers"
