#!/usr/bin/env python3
"""Run the real model and every adversary file through the noesis CLI and compare greedy text.

    eval-adversaries.py MODEL OUTDIR [--bin noesis] [--only NAME,...] [--speed N]
                        [--json FILE] [--check-tokenizer tests/fixtures/ai/tokenize.json]

For each file in OUTDIR/manifest.json (written by make-adversaries.py) and for MODEL itself:
`BIN ai generate --model FILE --prompt P --max-tokens 32 --threads 1` (greedy), one run at a
time, under `nice -n 10`, for three prompts. Prints a markdown table (to stdout) of: how many
of the three completions differ from the real model's, and at which token the first
difference is. Tokens are counted by re-tokenizing both completions with the model's own BPE
(vocab and merges read from the GGUF; see `Bpe`): the CLI prints text, not ids.

--speed N: afterwards, N interleaved rounds of a 64-token decode (real model, then each file
whose name starts with `cheap-`, `requant-` or `reprec-`), reporting best and median decode tok/s as
printed by the CLI on stderr, so that machine load hits every model alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gguf

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain recursion in one sentence.",
]
SPEED_PROMPT = "Write a short story about a robot who learns to paint."


# ---------------------------------------------------------------------------------------------
# The model's tokenizer, enough to count tokens of generated English text: llama.cpp's `smollm`
# pre-tokenizer (every numeric character alone, then the GPT-2 split) and byte-level BPE over
# the GGUF's vocab and merges. Python's `re` has no \p{..}: letters are `[^\W\d_]`, numbers `\d`
# (Unicode Nd), which is exact for the ASCII text compared here; --check-tokenizer measures it
# against llama.cpp's ids from tests/fixtures/ai/tokenize.json.


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


_GPT2 = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
_DIGIT = re.compile(r"(\d)")


class Bpe:
    def __init__(self, model: Path):
        r = gguf.GGUFReader(model)
        tokens = r.fields["tokenizer.ggml.tokens"].contents()
        merges = r.fields["tokenizer.ggml.merges"].contents()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ", 1)): i for i, m in enumerate(merges)}
        self.byte = _bytes_to_unicode()
        self.cache: dict[str, list[int]] = {}

    def _bpe(self, piece: str) -> list[int]:
        if piece in self.cache:
            return self.cache[piece]
        word = [self.byte[b] for b in piece.encode()]
        while len(word) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            a, b = word[i], word[i + 1]
            out, j = [], 0
            while j < len(word):
                if j < len(word) - 1 and word[j] == a and word[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            word = out
        ids = [self.vocab[w] for w in word]
        self.cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids = []
        for chunk in _DIGIT.split(text):
            if not chunk:
                continue
            for piece in _GPT2.findall(chunk):
                ids += self._bpe(piece)
        return ids


def check_tokenizer(bpe: Bpe, fixture: Path) -> str:
    d = json.loads(fixture.read_text())
    cases = [(c["text"], c["special_off"]["ids"]) for c in d["cases"]]
    cases += [(c["text"], c["special_off_ids"]) for c in d["fuzz_cases"]]
    ascii_cases = [(t, ids) for t, ids in cases if t.isascii()]
    ok_ascii = sum(bpe.encode(t) == ids for t, ids in ascii_cases)
    ok_all = sum(bpe.encode(t) == ids for t, ids in cases)
    return f"tokenizer vs llama.cpp: {ok_ascii}/{len(ascii_cases)} ASCII strings, {ok_all}/{len(cases)} all"


# ---------------------------------------------------------------------------------------------

_STATS = re.compile(r"output: (\d+) tokens .*decode ([\d.]+) s \(([\d.]+) tok/s\)")
_PREFILL = re.compile(r"prefill ([\d.]+) s \(([\d.]+) tok/s\)")


def generate(binary: str, model: Path, prompt: str, max_tokens: int) -> dict:
    cmd = ["nice", "-n", "10", binary, "ai", "generate", "--model", str(model), "--prompt", prompt,
           "--max-tokens", str(max_tokens), "--threads", "1"]
    env = dict(os.environ, NO_COLOR="1")
    env.pop("RUST_LOG", None)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-400:]}"}
    m, pf = _STATS.search(p.stderr), _PREFILL.search(p.stderr)
    return {
        "text": p.stdout.rstrip("\n"),
        "n_tokens": int(m.group(1)) if m else None,
        "decode_tok_s": float(m.group(3)) if m else None,
        "prefill_tok_s": float(pf.group(2)) if pf else None,
    }


def first_divergence(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--bin", default=os.environ.get("NOESIS_BIN", "noesis"))
    ap.add_argument("--only")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--speed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--check-tokenizer", type=Path)
    a = ap.parse_args()

    bpe = Bpe(a.model)
    report: dict = {"prompts": PROMPTS, "max_tokens": a.max_tokens}
    if a.check_tokenizer:
        report["tokenizer_check"] = check_tokenizer(bpe, a.check_tokenizer)
        print(report["tokenizer_check"], file=sys.stderr)
    manifest = json.loads((a.outdir / "manifest.json").read_text())
    files = [e for e in manifest["files"] if not a.only or e["file"].removesuffix(".gguf") in a.only.split(",")]

    t0 = time.monotonic()
    ref = [generate(a.bin, a.model, p, a.max_tokens) for p in PROMPTS]
    for r in ref:
        if "error" in r:
            sys.exit(f"real model: {r['error']}")
    report["real"] = ref
    rows = []
    for e in files:
        outs = [generate(a.bin, a.outdir / e["file"], p, a.max_tokens) for p in PROMPTS]
        e = dict(e, outputs=outs)
        if any("error" in o for o in outs):
            e["loads"] = False
            rows.append(e)
            print(f"{e['file']}: {outs[0].get('error')}", file=sys.stderr)
            continue
        e["loads"] = True
        divs = []
        for o, r in zip(outs, ref):
            divs.append(None if o["text"] == r["text"] else first_divergence(bpe.encode(r["text"]), bpe.encode(o["text"])))
        e["first_divergence"] = divs
        e["n_differ"] = sum(o["text"] != r["text"] for o, r in zip(outs, ref))
        rows.append(e)
        print(f"{e['file']}: {e['n_differ']}/3 differ, at {divs}", file=sys.stderr, flush=True)
    report["files"] = rows
    report["seconds_greedy"] = round(time.monotonic() - t0, 1)

    if a.speed:
        speed_files = [a.model] + [a.outdir / e["file"] for e in files if e["file"].startswith(("cheap-", "requant-", "reprec-"))]
        runs: dict[str, list[float]] = {f.name: [] for f in speed_files}
        n_tok: dict[str, list[int]] = {f.name: [] for f in speed_files}
        load_start = os.getloadavg()
        for _ in range(a.speed):
            for f in speed_files:
                g = generate(a.bin, f, SPEED_PROMPT, 64)
                if g.get("decode_tok_s"):
                    runs[f.name].append(g["decode_tok_s"])
                    n_tok[f.name].append(g["n_tokens"])
        report["speed"] = {
            "prompt": SPEED_PROMPT, "max_tokens": 64, "rounds": a.speed,
            "decode_tok_s": {k: {"best": max(v), "median": statistics.median(v), "all": v, "n_tokens": n_tok[k]}
                             for k, v in runs.items() if v},
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        }
        print(json.dumps(report["speed"]["decode_tok_s"]), file=sys.stderr)

    if a.json:
        a.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")

    print("| file | sha256 | size (bytes) | what changed | greedy outputs differing (of 3) | first divergent token per prompt |")
    print("| --- | --- | --- | --- | --- | --- |")
    for e in rows:
        if not e["loads"]:
            print(f"| `{e['file']}` | `{e['sha256']}` | {e['bytes']} | {e['what']} | does not load | |")
            continue
        divs = ", ".join("same" if d is None else str(d) for d in e["first_divergence"])
        print(f"| `{e['file']}` | `{e['sha256']}` | {e['bytes']} | {e['what']} | {e['n_differ']} | {divs} |")


if __name__ == "__main__":
    main()
