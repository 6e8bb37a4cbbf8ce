#!/usr/bin/env bash
# Creates the repo-root .venv and installs scripts/requirements.txt into it.
# Idempotent: does nothing when the venv exists and was installed from the
# same requirements.txt (a stamp holds its sha256).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
REQ=scripts/requirements.txt
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "setup_venv: installed $REQ into $VENV"
