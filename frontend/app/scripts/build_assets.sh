#!/usr/bin/env bash
# Builds the chat UI into frontend/app/dist for an assets canister (dfx's
# `type: assets`), and writes dist/config.json naming the task manager when
# the tool says which it is: dfx exports CANISTER_ID_TASK_MANAGER (the
# canister lists task_manager in its dependencies) and DFX_NETWORK to the
# build. icp-cli deployments need no config.json: the certified-assets
# canister's `ic_env` cookie carries PUBLIC_CANISTER_ID:task_manager.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
if [ -n "${CANISTER_ID_TASK_MANAGER:-}" ]; then
  network=local
  [ "${DFX_NETWORK:-local}" = ic ] && network=ic
  printf '{"network": "%s", "taskManager": "%s"}\n' "$network" "$CANISTER_ID_TASK_MANAGER" >dist/config.json
fi
