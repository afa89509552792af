#!/usr/bin/env bash
# Makes the adversary model files the proof-of-inference tests use (a subset of
# tests/ai-adversaries/make-adversaries.py's, each checked against its pinned sha256)
# into $NOESIS_ADVERSARY_DIR (default ~/.cache/noesis/adversaries), with the script's
# hash-pinned Python requirements in a venv next to it. A no-op when they are there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${NOESIS_ADVERSARY_DIR:-$HOME/.cache/noesis/adversaries}"
VENV="${NOESIS_ADVERSARY_VENV:-$HOME/.cache/noesis/adversaries-venv}"
MODEL="${NOESIS_MODEL_DIR:-$HOME/.noesis/dev/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
WANTED="perturbed-rerandom-L15,perturbed-norm-1.02-L10,perturbed-norm-1.02-output,requant-q8_0"

missing=0
for name in ${WANTED//,/ }; do
  [ -f "$OUT/$name.gguf" ] || missing=1
done
[ "$missing" = 0 ] && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --require-hashes -r "$ROOT/tests/ai-adversaries/requirements.txt"
fi
"$VENV/bin/python" "$ROOT/tests/ai-adversaries/make-adversaries.py" "$MODEL" "$OUT" --only "$WANTED"
