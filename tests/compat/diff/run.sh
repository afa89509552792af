#!/usr/bin/env bash
# Differential run between two automining endpoints:
#   diff/run.sh A_URL B_URL [SEED] [N] [differential.mjs options...]
# Exit status: 0 agree, 1 mismatch, 2 the run could not be carried out.
set -euo pipefail
COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$#" -lt 2 ]; then
  echo "usage: $0 A_URL B_URL [SEED] [N] [options]" >&2
  exit 2
fi
[ -d "$COMPAT_DIR/node_modules/viem" ] || (cd "$COMPAT_DIR" && npm ci --no-audit --no-fund)
exec node "$COMPAT_DIR/diff/differential.mjs" "$@"
