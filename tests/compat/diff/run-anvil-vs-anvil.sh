#!/usr/bin/env bash
# Validates the differential tool: runs it between two fresh anvil nodes, A (chain id 31337)
# and B (chain id 7337, different starting base fee so fee accounting is exercised).
#   diff/run-anvil-vs-anvil.sh [SEED] [N] [differential.mjs options...]
# ANVIL_ARGS_A / ANVIL_ARGS_B add anvil options, e.g. ANVIL_ARGS_B='--hardfork cancun'
# (a different hardfork on one side must make the run report mismatches).
set -euo pipefail
COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$COMPAT_DIR/lib/anvil.sh"
trap stop_anvils EXIT

ensure_node_modules
LOG_A="$(mktemp -t diff-anvil-a.XXXXXX.log)"
LOG_B="$(mktemp -t diff-anvil-b.XXXXXX.log)"
# shellcheck disable=SC2086 # the ANVIL_ARGS_* variables are lists of words
start_anvil 31337 "$LOG_A" ${ANVIL_ARGS_A:-}
PORT_A="$ANVIL_PORT"
# shellcheck disable=SC2086
start_anvil 7337 "$LOG_B" --base-fee 2000000000 ${ANVIL_ARGS_B:-}
PORT_B="$ANVIL_PORT"

SEED="${1:-1}"
COUNT="${2:-300}"
shift $(( $# < 2 ? $# : 2 ))
node "$COMPAT_DIR/diff/differential.mjs" "http://127.0.0.1:$PORT_A" "http://127.0.0.1:$PORT_B" "$SEED" "$COUNT" "$@"
