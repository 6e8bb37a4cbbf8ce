#!/usr/bin/env bash
# Builds the browser package of the tract engine: frontend/engine_web/pkg/
# (engine_web.js + engine_web_bg.wasm), which the chat UI bundles for its
# CPU path (frontend/app/src/local/cpu.worker.ts). How:
# scripts/build_web_package.sh.
set -euo pipefail
exec "$(dirname "$0")/../../scripts/build_web_package.sh" frontend/engine_web engine_web
