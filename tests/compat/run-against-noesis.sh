#!/usr/bin/env bash
# Runs the compatibility suite and the differential conformance check against a real
# `noesis dev` (fresh data dir, free port):
#   1. the viem / ethers / cast suite (test/*.test.mjs);
#   2. the differential workload, Noesis vs anvil (same hardfork), DIFF_N transactions
#      (default 300) with seed DIFF_SEED (default 1);
#   3. the market: a second `noesis dev`, this one with subnet 1, its miners, validator and
#      gateway, driven through the dashboard in chromium (market/*.test.mjs, playwright-core)
#      and through the Python `openai` SDK (tests/python).
# NOESIS_BIN names the binary (default: the workspace's debug build).
set -euo pipefail
COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$COMPAT_DIR/../.." && pwd)"
source "$COMPAT_DIR/lib/anvil.sh"
ensure_node_modules

NOESIS_BIN="${NOESIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/noesis}"
[ -x "$NOESIS_BIN" ] || { echo "noesis binary not found at $NOESIS_BIN (cargo build --bin noesis)" >&2; exit 2; }
WORK="$(mktemp -d)"
NOESIS_PID=""
MARKET_PID=""
cleanup() {
  [ -n "$NOESIS_PID" ] && kill "$NOESIS_PID" 2>/dev/null || true
  [ -n "$MARKET_PID" ] && kill "$MARKET_PID" 2>/dev/null || true
  stop_anvils
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(node "$COMPAT_DIR/lib/free-port.mjs")"
"$NOESIS_BIN" dev --no-ai --datadir "$WORK/noesis" --http-port "$PORT" >"$WORK/noesis.out" 2>"$WORK/noesis.log" &
NOESIS_PID=$!
if ! node "$COMPAT_DIR/lib/wait-for-rpc.mjs" "http://127.0.0.1:$PORT" 60; then
  echo "noesis did not start; its log follows:" >&2
  cat "$WORK/noesis.log" >&2
  exit 1
fi
echo "noesis dev on http://127.0.0.1:$PORT"

cd "$COMPAT_DIR"
NOESIS_BIN="$NOESIS_BIN" RPC_URL="http://127.0.0.1:$PORT" WS_URL="ws://127.0.0.1:$PORT" CHAIN_ID=7337 \
  node --test --test-concurrency=1 test/

start_anvil 31337 "$WORK/anvil.log" --hardfork osaka
node "$COMPAT_DIR/diff/differential.mjs" "http://127.0.0.1:$PORT" "http://127.0.0.1:$ANVIL_PORT" \
  "${DIFF_SEED:-1}" "${DIFF_N:-300}"

kill "$NOESIS_PID" 2>/dev/null || true
NOESIS_PID=""

MARKET_PORT="$(node "$COMPAT_DIR/lib/free-port.mjs")"
GATEWAY_PORT="$(node "$COMPAT_DIR/lib/free-port.mjs")"
"$NOESIS_BIN" dev --datadir "$WORK/market" --http-port "$MARKET_PORT" --gateway-port "$GATEWAY_PORT" \
  >"$WORK/market.out" 2>"$WORK/market.log" &
MARKET_PID=$!
for _ in $(seq 1 360); do
  grep -q '^Dashboard:' "$WORK/market.out" 2>/dev/null && break
  kill -0 "$MARKET_PID" 2>/dev/null || break
  sleep 0.5
done
if ! grep -q '^Dashboard:' "$WORK/market.out"; then
  echo "noesis dev (with the market) did not start; its output and log follow:" >&2
  cat "$WORK/market.out" "$WORK/market.log" >&2
  exit 1
fi
echo "noesis dev with the market on http://127.0.0.1:$MARKET_PORT, gateway on port $GATEWAY_PORT"
export NOESIS_BIN RPC_URL="http://127.0.0.1:$MARKET_PORT"
export NOESIS_DASHBOARD_URL="http://127.0.0.1:$MARKET_PORT/"
export NOESIS_GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT/v1"
node --test --test-concurrency=1 market/
"$ROOT/tests/python/run.sh"
