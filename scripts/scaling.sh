#!/usr/bin/env bash
# How the cost in the canisters grows with the model: seeded-random llama
# models in the shapes of SmolLM2-360M and SmolLM2-1.7B (int8 weights, one
# q8 stage; `cargo run -p cli --example random_llama`), each run through
# `icllm replica-bench` in the local replica, and a table of instructions
# per token, heap, load instructions and the stages each model needs within
# the IC's limits (3 GiB of heap per worker, 40 billion instructions per
# message).
#
# Every shape is measured with two depths (SCALING_LAYERS, default "1 2"
# layers), which gives per-layer figures (the difference) and the fixed
# part (embedding, head, the worker itself); the whole model's figures are
# derived from them. SCALING_FULL="smollm2-360m" also measures that whole
# model, to check the derivation (slow). The models are written to
# SCALING_DIR (default /tmp/icllm-scaling) and removed after their run;
# the JSON figures stay there. SCALING_REUSE=1 reuses a model's JSON when it
# is there (to print the table again, or to add SCALING_FULL).
#
#   scripts/scaling.sh
#   SCALING_FULL=smollm2-360m scripts/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${SCALING_DIR:-/tmp/icllm-scaling}"
LAYERS="${SCALING_LAYERS:-1 2}"
SHAPES="${SCALING_SHAPES:-smollm2-360m smollm2-1.7b}"
FULL="${SCALING_FULL:-}"
# The canisters' modules: those this checkout builds (build_canisters.sh
# copies them into the project's target/canisters even when
# CARGO_TARGET_DIR is shared), or SCALING_WASM_DIR's.
WASM_DIR="${SCALING_WASM_DIR:-}"
# The tokenizer of the SmolLM2 family (any prepared SmolLM2-135M cut).
LIKE=""
for cut in q8-1 stages-1; do
  if [ -f "models/smollm2-135m-instruct/$cut/manifest.json" ]; then
    LIKE="models/smollm2-135m-instruct/$cut"
    break
  fi
done
[ -n "$LIKE" ] || { echo "scaling: run scripts/prepare_smollm2.sh first (for the tokenizer)" >&2; exit 1; }
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

[ -n "$WASM_DIR" ] || { scripts/build_canisters.sh; WASM_DIR=target/canisters; }
cargo build --release -p cli --example random_llama
TARGET="${CARGO_TARGET_DIR:-target}/release"
mkdir -p "$DIR"

measure() {  # measure SHAPE LAYERS-ARGS NAME
  local model="$DIR/$3"
  if [ "${SCALING_REUSE:-0}" = 1 ] && [ -f "$DIR/$3.json" ]; then
    echo "scaling: reusing $DIR/$3.json"
    return
  fi
  "$TARGET/examples/random_llama" --shape "$1" $2 --like "$LIKE" --out "$model" --seed 7
  "$TARGET/icllm" replica-bench --model "$model" --tokens 8 --json "$DIR/$3.json" \
    --wasm-dir "$WASM_DIR"
  rm -rf "$model"
}

for shape in $SHAPES; do
  for layers in $LAYERS; do
    measure "$shape" "--layers $layers" "$shape-${layers}l"
  done
  case " $FULL " in
    *" $shape "*) measure "$shape" "" "$shape-full" ;;
  esac
done

"$PY" - "$DIR" "$SHAPES" "$LAYERS" <<'EOF'
import json, math, os, sys

out, shapes, layer_list = sys.argv[1], sys.argv[2].split(), [int(n) for n in sys.argv[3].split()]
# Published depths and KV widths (kv heads x head dim) of the shapes.
DEPTH = {"smollm2-135m": 30, "smollm2-360m": 32, "smollm2-1.7b": 24}
KV_WIDTH = {"smollm2-135m": 3 * 64, "smollm2-360m": 5 * 64, "smollm2-1.7b": 32 * 64}
HEAP_LIMIT = 3 * 2**30
MESSAGE_LIMIT = 40e9
CONTEXT = 2048  # positions of KV cache counted in the heap (f32 keys and values)

def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        j = json.load(f)
    return {
        "decode": j["decode_instructions_per_token"],
        "prefill": j["prefill_instructions_per_token"],
        "load": sum(j["load_instructions"]),
        "heap": max(j["peak_heap_bytes"]),
        "upload": j["upload_bytes"],
    }

G, MiB = 1e9, 2**20

print(f"{'model':<14} {'layers':>6} {'source':<9} {'decode/token':>12} {'prefill/token':>13} "
      f"{'load':>8} {'heap':>9} {'stage file':>10} {'tokens/40B':>10} {'stages':>6}")
for shape in shapes:
    a, b = layer_list[0], layer_list[-1]
    ma, mb = load(f"{shape}-{a}l"), load(f"{shape}-{b}l")
    per_layer = {k: (mb[k] - ma[k]) / (b - a) for k in ma}
    fixed = {k: ma[k] - a * per_layer[k] for k in ma}
    depth = DEPTH[shape]
    kv_per_layer = 2 * KV_WIDTH[shape] * 4 * CONTEXT

    def stages_needed(layers):
        # The first and the last stage each hold the (tied) embedding: the
        # fixed part bounds both; a stage of n layers adds n per-layer parts
        # to the measured heap, and its KV cache at CONTEXT positions.
        for s in range(1, layers + 1):
            n = math.ceil(layers / s)
            heap = fixed["heap"] + n * per_layer["heap"] + n * kv_per_layer
            instructions = fixed["decode"] + n * per_layer["decode"]
            if heap <= HEAP_LIMIT and instructions <= MESSAGE_LIMIT:
                return s
        return "-"

    rows = [(a, "measured", ma), (b, "measured", mb)]
    full = f"{shape}-full"
    if os.path.exists(os.path.join(out, full + ".json")):
        rows.append((depth, "measured", load(full)))
    derived = {k: fixed[k] + depth * per_layer[k] for k in ma}
    rows.append((depth, "derived", derived))
    for layers, source, m in rows:
        print(f"{shape:<14} {layers:>6} {source:<9} {m['decode'] / G:>10.3f} B {m['prefill'] / G:>11.3f} B "
              f"{m['load'] / G:>6.2f} B {m['heap'] / MiB:>5.0f} MiB {m['upload'] / MiB:>6.0f} MiB "
              f"{int(MESSAGE_LIMIT // m['decode']):>10} {stages_needed(layers):>6}")
    print(f"{shape:<14} per layer: decode {per_layer['decode'] / G:.4f} B, prefill {per_layer['prefill'] / G:.4f} B, "
          f"load {per_layer['load'] / G:.3f} B, heap {per_layer['heap'] / MiB:.1f} MiB, "
          f"stage file {per_layer['upload'] / MiB:.1f} MiB "
          f"(+ {kv_per_layer / MiB:.0f} MiB of KV cache at {CONTEXT} positions); "
          f"fixed: decode {fixed['decode'] / G:.3f} B, load {fixed['load'] / G:.2f} B, "
          f"heap {fixed['heap'] / MiB:.0f} MiB, stage file {fixed['upload'] / MiB:.0f} MiB")
print(f"derived rows: the fixed part + layers x the per-layer figures (heap included: the worker's peak, "
      f"measured). stages: the fewest whose largest (ceil(layers / stages) layers plus the fixed part, and "
      f"the KV cache at {CONTEXT} positions) fits a {HEAP_LIMIT // 2**30} GiB heap and "
      f"{MESSAGE_LIMIT / G:.0f} B instructions per token")
EOF
