#!/usr/bin/env bash
# Runs the whole compatibility suite against a throwaway anvil (chain id 31337) started from
# node_modules, then stops it. The suite reaches anvil through a proxy that refuses
# non-standard methods (see tools/run-suite.mjs; --direct skips it). Extra arguments go to
# `node --test`, e.g.  ./run-against-anvil.sh --test-name-pattern='feeHistory'
set -euo pipefail
COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$COMPAT_DIR/lib/anvil.sh"
ensure_node_modules
exec node "$COMPAT_DIR/tools/run-suite.mjs" "$@"
