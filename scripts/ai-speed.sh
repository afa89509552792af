#!/usr/bin/env bash
# The AI runtime's speed against llama.cpp, side by side in one run on this machine:
# llama.cpp (node-llama-cpp, `make-fixtures.mjs --only speed`), then noesis-ai's `speed`
# example at 2 and 1 threads on the same 512 prompt ids, then llama.cpp again; prints the
# ratios (ours / llama.cpp, > 1 is faster) and writes every JSON to the output folder.
#
#   scripts/ai-speed.sh [MODEL.gguf] [OUT_DIR]
#
# Needs node 20 with tests/ai-reference's node_modules (`npm ci` there) or
# NOESIS_AI_REFERENCE pointing at a checkout's tests/ai-reference that has them, and the
# model (`noesis model fetch`). Other work on the machine changes both sides a lot (see
# tests/ai-reference/README.md): compare the `best` columns, and look at the load average.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${1:-${NOESIS_MODEL_DIR:-$HOME/.noesis/dev/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
OUT="${2:-$(mktemp -d /tmp/ai-speed.XXXXXX)}"
REF="${NOESIS_AI_REFERENCE:-$ROOT/tests/ai-reference}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$OUT"

cargo build --release --quiet -p noesis-ai --example speed --manifest-path "$ROOT/Cargo.toml"
SPEED="$TARGET/release/examples/speed"

llama() { (cd "$REF" && node make-fixtures.mjs "$MODEL" --only speed --speed-out "$1" >/dev/null 2>&1); }
echo "llama.cpp (before) ..." >&2
llama "$OUT/llama-before.json"
for t in 2 1; do
  echo "noesis-ai, $t thread(s) ..." >&2
  "$SPEED" --model "$MODEL" --threads "$t" --prompt-ids "$OUT/llama-before.json" >"$OUT/noesis-$t.json"
done
echo "llama.cpp (after) ..." >&2
llama "$OUT/llama-after.json"

python3 - "$OUT" <<'EOF'
import json, sys, os
out = sys.argv[1]
load = lambda n: json.load(open(os.path.join(out, n)))
before, after = load("llama-before.json"), load("llama-after.json")
def llama(threads, key, field):
    # The better of the two llama.cpp runs (before and after ours).
    vals = [r[key][field] if key in r and isinstance(r[key], dict) else r[key]
            for d in (before, after) for r in d["runs"] if r["threads"] == threads]
    return max(vals) if field.startswith("tok") else min(vals)
rows = []
for t in (2, 1):
    ours = load(f"noesis-{t}.json")
    for key, label in (("prefill_512", "prefill 512"), ("decode_128_from_empty", "decode 128"),
                       ("decode_128_after_511", "decode 128 @512")):
        for field in ("tok_per_s_median", "tok_per_s_best"):
            o, l = ours[key][field], llama(t, key, field)
            rows.append((t, f"{label} ({field.split('_')[-1]})", o, l, o / l))
    rows.append((t, "load s", ours["load_seconds"], llama(t, "load_seconds", ""), None))
    rows.append((t, "peak RSS MiB", ours["peak_rss_mib"], llama(t, "peak_rss_mib", ""), None))
print(f"{'threads':>7}  {'measure':<26}{'noesis-ai':>11}{'llama.cpp':>11}{'ratio':>8}")
for t, m, o, l, r in rows:
    print(f"{t:>7}  {m:<26}{o:>11.2f}{l:>11.2f}{'' if r is None else f'{r:8.2f}'}")
la = [d["header"]["machine"].get("loadavg_at_start", [None])[0] for d in (before, after)]
print(f"load average (1 min) at the llama.cpp runs' starts: {la}; ours: "
      + ", ".join(str(load(f'noesis-{t}.json')['loadavg_1m_start_end']) for t in (2, 1)))
print(f"JSON files: {out}")
EOF
