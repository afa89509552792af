# Shell helpers for starting throwaway anvil nodes from node_modules. Source this file.
# Requires COMPAT_DIR (the tests/compat directory).

ANVIL_BIN="$COMPAT_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
ANVIL_PIDS=()

# Installs the pinned packages when node_modules is missing.
ensure_node_modules() {
  if [ ! -x "$ANVIL_BIN" ]; then
    (cd "$COMPAT_DIR" && npm ci --no-audit --no-fund)
  fi
}

# start_anvil CHAIN_ID LOGFILE [extra anvil args...]
# Starts anvil on a free loopback port, waits until it answers, and sets ANVIL_PORT.
# (Call it directly, not in $(...), so the pid is recorded for stop_anvils.)
start_anvil() {
  local chain_id="$1" log="$2"
  shift 2
  local port
  port="$(node "$COMPAT_DIR/lib/free-port.mjs")"
  "$ANVIL_BIN" --host 127.0.0.1 --port "$port" --chain-id "$chain_id" "$@" >"$log" 2>&1 &
  ANVIL_PIDS+=("$!")
  if ! node "$COMPAT_DIR/lib/wait-for-rpc.mjs" "http://127.0.0.1:$port" 30; then
    echo "anvil did not start; its log follows:" >&2
    cat "$log" >&2
    return 1
  fi
  ANVIL_PORT="$port"
}

# Stops every anvil started by start_anvil (by pid).
stop_anvils() {
  local pid
  for pid in "${ANVIL_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ANVIL_PIDS=()
}
