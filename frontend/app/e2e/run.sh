#!/usr/bin/env bash
# End-to-end tests of the chat UI (frontend/app), as CI runs them from
# scripts/test.sh: builds the UI, icllm (debug) and the canisters, serves
# the local replica with the UI next to it (`icllm replica serve
# --frontend`), deploys tiny-llama the way scripts/main.sh deploys
# SmolLM2, asks `icllm` for the greedy answer to the test's question, runs
# the browser tests (e2e/chat.test.mjs, headless Debian Chromium through
# playwright-core) and stops the server.
#
# Then "Run on this device": the WebGPU path (e2e/local_gpu.test.mjs) in a
# Chromium with WebGPU on SwiftShader, the CPU path (e2e/local_cpu.test.mjs)
# in a Chromium started without WebGPU.
#
# Screenshots of each mode: target/e2e/screenshots/. Server log and state:
# target/e2e/. A missing Chromium is a failure, not a skip.
# Environment: CHROMIUM (/usr/bin/chromium), ICLLM (an icllm binary to use
# instead of building one).
set -euo pipefail
APP="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$(cd "$APP/../.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if ! [ -x "$CHROMIUM" ]; then
  echo "e2e: no Chromium at $CHROMIUM (scripts/setup.sh installs Debian's chromium)" >&2
  exit 1
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
WORK="$ROOT/target/e2e"
MODEL_DIR="$ROOT/models/tiny-llama/stages-1"
MESSAGE="What is the capital of France?"
MAX_NEW_TOKENS=24

# What the tests need, built. The local backends' packages first
# (frontend/engine_web/pkg: the tract engine; frontend/gpu/pkg: the WGSL
# forward pass; both wasm32, wasm-bindgen), then the app, which bundles
# them. E2E_NO_ENGINE_WEB=1 builds the app without the first, E2E_NO_GPU=1
# without the second (E2E_NO_ENGINE_WEB=1 E2E_NO_GPU=1: the 'not available'
# check).
if [ "${E2E_NO_ENGINE_WEB:-0}" = 1 ]; then
  rm -rf "$ROOT/frontend/engine_web/pkg"
else
  "$ROOT/frontend/engine_web/build.sh"
fi
if [ "${E2E_NO_GPU:-0}" = 1 ]; then
  rm -rf "$ROOT/frontend/gpu/pkg"
else
  "$ROOT/frontend/gpu/build.sh"
fi
(cd "$APP" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)
LOCAL_BUILT=0
GPU_BUILT=0
[ -f "$ROOT/frontend/gpu/pkg/gpu.js" ] && GPU_BUILT=1 && LOCAL_BUILT=1
CPU_BUILT=0
[ -f "$ROOT/frontend/engine_web/pkg/engine_web.js" ] && CPU_BUILT=1 && LOCAL_BUILT=1
# ICLLM=<binary> uses that icllm instead of building one.
if [ -z "${ICLLM:-}" ]; then
  cargo build -p cli
  ICLLM="$TARGET/debug/icllm"
fi
for c in task_manager worker; do
  [ -f "$TARGET/canisters/$c.wasm" ] || scripts/build_canisters.sh task_manager worker
done

rm -rf "$WORK/state" "$WORK/screenshots"
mkdir -p "$WORK/state"
openssl genpkey -algorithm ed25519 -out "$WORK/state/controller.pem" 2>/dev/null

# shellcheck source=../../../scripts/serve_replica.sh
. "$ROOT/scripts/serve_replica.sh"
serve_replica "$ICLLM" 0 "$WORK/state" "$APP/dist" "$WORK/serve.log" || exit 1
echo "e2e: replica and UI at $url"

net=(--network "$url" --identity "$WORK/state/controller.pem")
"$ICLLM" "${net[@]}" install-task-manager | tee "$WORK/install.log"
tm=$(sed -n 's/^task manager \([a-z0-9-]*\):.*/\1/p' "$WORK/install.log")
net+=(--canister "task_manager=$tm")
printf '{"network": "local", "taskManager": "%s"}\n' "$tm" >"$APP/dist/config.json"
"$ICLLM" "${net[@]}" upload-worker
"$ICLLM" "${net[@]}" spawn-workers --count 1
"$ICLLM" "${net[@]}" upload --model "$MODEL_DIR"
"$ICLLM" "${net[@]}" deploy --model "$MODEL_DIR"

# The greedy answer through the canisters, as icllm gets it (stdout is the
# streamed text and one newline).
"$ICLLM" "${net[@]}" generate --model "$MODEL_DIR" --chat "$MESSAGE" \
  --max-new-tokens "$MAX_NEW_TOKENS" --temperature 0 >"$WORK/expected.raw"
python3 -c 'import sys; t = open(sys.argv[1]).read(); open(sys.argv[2], "w").write(t[:-1] if t.endswith("\n") else t)' \
  "$WORK/expected.raw" "$WORK/expected.txt"
echo "e2e: icllm's greedy answer: $(cat "$WORK/expected.txt")"

cd "$APP"
E2E_LOCAL_BUILT="$LOCAL_BUILT" E2E_URL="$url" E2E_ICLLM="$ICLLM" E2E_IDENTITY="$WORK/state/controller.pem" E2E_TASK_MANAGER="$tm" E2E_MESSAGE="$MESSAGE" \
  E2E_MAX_NEW_TOKENS="$MAX_NEW_TOKENS" E2E_EXPECTED="$WORK/expected.txt" \
  E2E_MODEL_DIR="$MODEL_DIR" E2E_SCREENSHOTS="$WORK/screenshots" CHROMIUM="$CHROMIUM" \
  node --test --test-reporter=spec e2e/chat.test.mjs
local_env=(E2E_URL="$url" E2E_MESSAGE="$MESSAGE" E2E_MAX_NEW_TOKENS="$MAX_NEW_TOKENS" E2E_EXPECTED="$WORK/expected.txt"
  E2E_MODEL_DIR="$MODEL_DIR" E2E_SCREENSHOTS="$WORK/screenshots" CHROMIUM="$CHROMIUM")
# The WebGPU path, in a browser with WebGPU (SwiftShader).
if [ "$GPU_BUILT" = 1 ]; then
  env "${local_env[@]}" node --test --test-reporter=spec e2e/local_gpu.test.mjs
fi
# The CPU path, in a browser without WebGPU.
if [ "$CPU_BUILT" = 1 ]; then
  env "${local_env[@]}" node --test --test-reporter=spec e2e/local_cpu.test.mjs
fi
echo "e2e: screenshots in target/e2e/screenshots/"
