#!/usr/bin/env bash
# The OpenAI Python SDK against a running Noesis gateway (tests/python/test_openai_gateway.py).
#
#   NOESIS_GATEWAY_URL=http://127.0.0.1:28000/v1 \
#   NOESIS_BIN=$HOME/.cache/noesis/target/debug/noesis \
#       tests/python/run.sh
#
# Makes (or reuses) a venv at ${NOESIS_PY_VENV:-$HOME/.cache/noesis/py-openai-venv} with
# tests/python/requirements.txt installed by `pip install --require-hashes`; the venv keeps
# a copy of the requirements it was made from and is made anew when the file changes.
# Without NOESIS_GATEWAY_URL the tests are skipped (exit 0). PYTHON picks the interpreter
# for a new venv (default python3). Exits non-zero when a test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
venv="${NOESIS_PY_VENV:-$HOME/.cache/noesis/py-openai-venv}"
installed="$venv/noesis-requirements.txt"

usable() {
    [ -x "$venv/bin/python" ] &&
        cmp -s "$requirements" "$installed" &&
        "$venv/bin/python" -c 'import openai' >/dev/null 2>&1
}

if ! usable; then
    if [ -e "$venv" ]; then
        if [ ! -f "$venv/pyvenv.cfg" ]; then
            echo "run.sh: $venv exists and is not a venv; not touching it (set NOESIS_PY_VENV)" >&2
            exit 2
        fi
        echo "run.sh: requirements changed or venv broken: making $venv anew" >&2
        rm -rf "$venv"
    fi
    mkdir -p "$(dirname "$venv")"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes -r "$requirements"
    # Only after a complete install: an interrupted one is redone next time.
    cp "$requirements" "$installed"
fi

echo "run.sh: $("$venv/bin/python" --version) in $venv, openai $(sed -n 's/^openai==\([^ ]*\).*/\1/p' "$installed")" >&2
cd "$here"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the work tree
exec "$venv/bin/python" -m unittest discover -v -s "$here" -t "$here" -p 'test_*.py'
