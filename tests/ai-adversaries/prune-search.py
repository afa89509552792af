#!/usr/bin/env python3
"""Which layers can a cheap decoder drop? A greedy search with a small numpy llama.

    prune-search.py MODEL [--fixture tests/fixtures/ai/greedy.json] [--down-to 15] [--out FILE]

Not run by the detection matrix: it justifies the layer lists hard-coded in
make-adversaries.py (`CHEAP_KEEP`). The metric is what a "cheap decoding with an honest proof"
attacker cares about: **top-1 agreement with the real model on the real model's own greedy
continuations**. The eight chat prompts of `tests/fixtures/ai/greedy.json` (llama.cpp's prompt
ids and its 64 greedy ids, run `default`) are fed teacher-forced; at every generated position
the pruned model's argmax is compared with the full numpy model's argmax (so numpy-vs-llama.cpp
rounding does not count against a candidate), and the mean KL(full || pruned) is recorded too.

Search: from the 30-layer model, repeatedly drop the one layer whose removal keeps agreement
highest (ties: lower mean KL), down to --down-to layers; every step is printed and written to
--out as JSON. The numpy model dequantizes every tensor to f32 with `gguf.quants` (about
0.6 GB) and runs plain f32 math: RMSNorm (eps from the file), llama.cpp's "normal" RoPE
(adjacent pairs, freq_base from the file), grouped-query attention, SwiGLU, tied output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import gguf  # noqa: E402


class Llama:
    def __init__(self, path: Path):
        r = gguf.GGUFReader(path)
        kv = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
        self.n_layer = kv["llama.block_count"]
        self.n_embd = kv["llama.embedding_length"]
        self.n_head = kv["llama.attention.head_count"]
        self.n_kv = kv["llama.attention.head_count_kv"]
        self.eps = np.float32(kv["llama.attention.layer_norm_rms_epsilon"])
        self.base = kv["llama.rope.freq_base"]
        self.hd = self.n_embd // self.n_head
        w = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, gguf.GGMLQuantizationType(t.tensor_type))
            w[t.name] = np.ascontiguousarray(a.reshape([int(x) for x in reversed(t.shape)]), dtype=np.float32)
        self.w = w
        self.emb = w["token_embd.weight"]  # [vocab, n_embd]
        self.out = w.get("output.weight", self.emb)

    def rope(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        # x [T, H, hd]; llama.cpp NORM mode: rotate pairs (2i, 2i+1)
        inv = self.base ** (-np.arange(0, self.hd, 2, dtype=np.float64) / self.hd)
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        c, s = np.cos(ang).astype(np.float32)[:, None, :], np.sin(ang).astype(np.float32)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        y = np.empty_like(x)
        y[..., 0::2] = x0 * c - x1 * s
        y[..., 1::2] = x0 * s + x1 * c
        return y

    def norm(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * g

    def embed(self, ids: list[int]) -> np.ndarray:
        return self.emb[np.asarray(ids)]

    def layer(self, x: np.ndarray, i: int) -> np.ndarray:
        """The residual stream after original layer `i`, given the stream `x` [T, n_embd]."""
        T = x.shape[0]
        pos = np.arange(T)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        rep = self.n_head // self.n_kv
        p = f"blk.{i}."
        w = self.w
        h = self.norm(x, w[p + "attn_norm.weight"])
        q = (h @ w[p + "attn_q.weight"].T).reshape(T, self.n_head, self.hd)
        k = (h @ w[p + "attn_k.weight"].T).reshape(T, self.n_kv, self.hd)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, self.n_kv, self.hd)
        q, k = self.rope(q, pos), self.rope(k, pos)
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.matmul(q.transpose(1, 0, 2), k.transpose(1, 2, 0)) / np.float32(np.sqrt(self.hd)) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.matmul(att, v.transpose(1, 0, 2)).transpose(1, 0, 2).reshape(T, self.n_embd)
        x = x + o @ w[p + "attn_output.weight"].T
        h = self.norm(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        u = h @ w[p + "ffn_up.weight"].T
        return x + ((g / (1 + np.exp(-g))) * u) @ w[p + "ffn_down.weight"].T

    def run(self, x: np.ndarray, layers: list[int]) -> np.ndarray:
        for i in layers:
            x = self.layer(x, i)
        return x

    def head(self, x: np.ndarray) -> np.ndarray:
        return self.norm(x, self.w["output_norm.weight"]) @ self.out.T


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    here = Path(__file__).resolve().parent
    ap.add_argument("--fixture", type=Path, default=here.parent / "fixtures/ai/greedy.json")
    ap.add_argument("--down-to", type=int, default=15)
    ap.add_argument("--gen", type=int, default=32, help="generated positions per prompt scored")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--cases", help="comma-separated fixture case names (default: all but long_prompt)")
    a = ap.parse_args()

    t0 = time.monotonic()
    m = Llama(a.model)
    cases = json.loads(a.fixture.read_text())["cases"]
    seqs = []
    names = a.cases.split(",") if a.cases else [c["name"] for c in cases if c["name"] != "long_prompt"]
    for c in cases:
        if c["name"] not in names:
            continue
        p = c["prompt_ids"]
        g = c["runs"]["default"]["generated_ids"][: a.gen]
        seqs.append((p + g, slice(len(p) - 1, len(p) - 1 + len(g)), g))
    print(f"loaded in {time.monotonic() - t0:.1f} s; {len(seqs)} sequences", file=sys.stderr)

    full = list(range(m.n_layer))
    ref = [log_softmax(m.head(m.run(m.embed(ids), full)[sl])) for ids, sl, _ in seqs]
    ref_top = [r.argmax(-1) for r in ref]
    llama_agree = np.mean(np.concatenate([rt == np.asarray(g) for rt, (_, _, g) in zip(ref_top, seqs)]))
    print(f"full numpy model vs llama.cpp greedy ids: top-1 agreement {llama_agree:.3f}", file=sys.stderr)

    def score(finals: list[np.ndarray]) -> tuple[float, float]:
        agree, kl = [], []
        for x, (_, sl, _), r, rt in zip(finals, seqs, ref, ref_top):
            lp = log_softmax(m.head(x[sl]))
            agree.append(lp.argmax(-1) == rt)
            kl.append((np.exp(r) * (r - lp)).sum(-1))
        return float(np.mean(np.concatenate(agree))), float(np.mean(np.concatenate(kl)))

    steps = []
    keep = full
    while len(keep) > a.down_to:
        # streams before each kept layer, so a candidate only re-runs the layers after its gap
        before = []
        for ids, _, _ in seqs:
            xs, x = [], m.embed(ids)
            for i in keep:
                xs.append(x)
                x = m.layer(x, i)
            before.append(xs)
        best = None
        for j, drop in enumerate(keep):
            rest = keep[j + 1 :]
            s = score([m.run(xs[j], rest) for xs in before])
            if best is None or (s[0], -s[1]) > (best[1][0], -best[1][1]):
                best = (drop, s)
        keep = [i for i in keep if i != best[0]]
        step = {"n_layers": len(keep), "dropped": best[0], "agreement": round(best[1][0], 4),
                "kl": round(best[1][1], 4), "keep": keep}
        steps.append(step)
        print(json.dumps(step), f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    if a.out:
        a.out.write_text(json.dumps({"full_vs_llama_cpp_agreement": float(llama_agree), "gen": a.gen,
                                     "steps": steps}, indent=1) + "\n")


if __name__ == "__main__":
    main()
