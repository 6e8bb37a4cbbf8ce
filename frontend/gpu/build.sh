#!/usr/bin/env bash
# Builds the browser package of the WebGPU forward pass: frontend/gpu/pkg/
# (gpu.js + gpu_bg.wasm), which the chat UI's WebGPU worker bundles
# (frontend/app/src/local/gpu.worker.ts). wgpu has its WebGPU backend only
# on wasm32 (Cargo.toml). How: scripts/build_web_package.sh.
set -euo pipefail
exec "$(dirname "$0")/../../scripts/build_web_package.sh" frontend/gpu gpu
