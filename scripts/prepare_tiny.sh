#!/usr/bin/env bash
# Builds the tiny random llama used by tests: models/tiny-llama/source/
# (byte-for-byte reproducible), checks it against the numpy reference, writes
# its fixtures.json and its stage cuts (stages-1..3, as far as it has layers).
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=13     # greedy top-1/top-2 logits are >= 0.03 apart in every fixture step
LAYERS=2
OUT="${1:-models/tiny-llama}"   # another directory: check that the committed model is reproducible
PY=.venv/bin/python
[ -x "$PY" ] || scripts/setup_venv.sh

"$PY" scripts/build_llama_onnx.py tiny "$OUT/source" --seed "$SEED" --layers "$LAYERS" --name tiny-llama
"$PY" scripts/check_model.py "$OUT/source" --tiny-seed "$SEED" >/dev/null \
  || { "$PY" scripts/check_model.py "$OUT/source" --tiny-seed "$SEED"; exit 1; }
"$PY" scripts/write_fixtures.py "$OUT"
if [ -f scripts/cut_stages.py ]; then
  for n in 1 2 3; do
    if [ "$n" -gt "$LAYERS" ]; then
      echo "prepare_tiny: no stages-$n ($LAYERS layers)"
      continue
    fi
    "$PY" scripts/cut_stages.py "$OUT/source" "$OUT/stages-$n" --stages "$n"
  done
fi
