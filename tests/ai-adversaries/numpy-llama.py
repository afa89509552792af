#!/usr/bin/env python3
"""A small numpy llama for measuring the adversaries offline (not run by the detection matrix).

    numpy-llama.py prune MODEL [--down-to 15] [--out FILE]     # which layers a cheap decoder drops
    numpy-llama.py compare MODEL FILE... [--out FILE]          # how far each file is from MODEL

Both feed the chat prompts of `tests/fixtures/ai/greedy.json` (llama.cpp's prompt ids and its
greedy ids, run `default`; all cases but `long_prompt` unless --cases) teacher-forced, and look
at the first --gen (32) generated positions. The reference is this numpy model run on MODEL, so
numpy-vs-llama.cpp rounding never counts against a candidate (the full model's agreement with
llama.cpp's own ids is printed: about 0.96, the rest being near-ties).

prune: from the 30-layer model, repeatedly drop the one layer whose removal keeps **top-1
agreement with the real model on its own greedy continuations** highest (ties: lower mean
KL(real || pruned)), down to --down-to layers. That is the metric a "cheap decoding with an
honest proof" attacker cares about. It justifies the layer lists hard-coded in
make-adversaries.py (`CHEAP_KEEP`); about 40 minutes on one busy core.

compare: per file, top-1 agreement and mean KL as above, and for files with MODEL's depth the
relative L2 distance ||h_file - h_real|| / ||h_real|| of the residual stream after the middle
and the last layer (median and max over positions): the size of the difference a hidden-state
commitment has to see.

The model dequantizes every tensor to f32 with `gguf.quants` (about 0.6 GB) and runs plain f32
math: RMSNorm (eps from the file), llama.cpp's "normal" RoPE (adjacent pairs, freq_base from
the file), grouped-query attention, SwiGLU, tied output embedding.
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


def load_cases(fixture: Path, names: str | None, gen: int) -> list[tuple[list[int], slice, list[int]]]:
    cases = json.loads(fixture.read_text())["cases"]
    wanted = names.split(",") if names else [c["name"] for c in cases if c["name"] != "long_prompt"]
    seqs = []
    for c in cases:
        if c["name"] in wanted:
            p = c["prompt_ids"]
            g = c["runs"]["default"]["generated_ids"][:gen]
            seqs.append((p + g, slice(len(p) - 1, len(p) - 1 + len(g)), g))
    return seqs


def agreement(lp_ref: list[np.ndarray], lp: list[np.ndarray]) -> tuple[float, float]:
    agree = [a.argmax(-1) == b.argmax(-1) for a, b in zip(lp_ref, lp)]
    kl = [(np.exp(a) * (a - b)).sum(-1) for a, b in zip(lp_ref, lp)]
    return float(np.mean(np.concatenate(agree))), float(np.mean(np.concatenate(kl)))


def prune(m: Llama, seqs, down_to: int, t0: float) -> list[dict]:
    full = list(range(m.n_layer))
    ref = [log_softmax(m.head(m.run(m.embed(ids), full)[sl])) for ids, sl, _ in seqs]
    steps = []
    keep = full
    while len(keep) > down_to:
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
            lp = [log_softmax(m.head(m.run(xs[j], rest)[sl])) for xs, (_, sl, _) in zip(before, seqs)]
            s = agreement(ref, lp)
            if best is None or (s[0], -s[1]) > (best[1][0], -best[1][1]):
                best = (drop, s)
        keep = [i for i in keep if i != best[0]]
        step = {"n_layers": len(keep), "dropped": best[0], "agreement": round(best[1][0], 4),
                "kl": round(best[1][1], 4), "keep": keep}
        steps.append(step)
        print(json.dumps(step), f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    return steps


def streams(m: Llama, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Residual stream after the middle layer and after the last one."""
    x = m.run(m.embed(ids), list(range(m.n_layer // 2)))
    return x, m.run(x, list(range(m.n_layer // 2, m.n_layer)))


def rel_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


def compare(m: Llama, files: list[Path], seqs, t0: float) -> list[dict]:
    ref_streams = [streams(m, ids) for ids, _, _ in seqs]
    ref = [log_softmax(m.head(last[sl])) for (mid, last), (_, sl, _) in zip(ref_streams, seqs)]
    rows = []
    for f in files:
        o = Llama(f)
        st = [streams(o, ids) for ids, _, _ in seqs]
        lp = [log_softmax(o.head(last[sl])) for (mid, last), (_, sl, _) in zip(st, seqs)]
        ag, kl = agreement(ref, lp)
        row = {"file": f.name, "n_layers": o.n_layer, "agreement": round(ag, 4), "kl": round(kl, 5)}
        if o.n_layer == m.n_layer:
            for k, which in (("mid", 0), ("last", 1)):
                d = np.concatenate([rel_l2(s[which][sl], r[which][sl]) for s, r, (_, sl, _) in zip(st, ref_streams, seqs)])
                row[f"rel_l2_{k}_median"] = float(f"{np.median(d):.3g}")
                row[f"rel_l2_{k}_max"] = float(f"{d.max():.3g}")
        rows.append(row)
        print(json.dumps(row), f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cmd", choices=["prune", "compare"])
    ap.add_argument("model", type=Path)
    ap.add_argument("files", type=Path, nargs="*")
    here = Path(__file__).resolve().parent
    ap.add_argument("--fixture", type=Path, default=here.parent / "fixtures/ai/greedy.json")
    ap.add_argument("--cases", help="comma-separated fixture case names (default: all but long_prompt)")
    ap.add_argument("--gen", type=int, default=32, help="generated positions per prompt scored")
    ap.add_argument("--down-to", type=int, default=15)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()

    t0 = time.monotonic()
    m = Llama(a.model)
    seqs = load_cases(a.fixture, a.cases, a.gen)
    full = list(range(m.n_layer))
    lp = [m.head(m.run(m.embed(ids), full)[sl]).argmax(-1) for ids, sl, _ in seqs]
    llama_agree = float(np.mean(np.concatenate([t == np.asarray(g) for t, (_, _, g) in zip(lp, seqs)])))
    print(f"loaded in {time.monotonic() - t0:.1f} s; {len(seqs)} sequences; numpy model vs llama.cpp "
          f"greedy ids: top-1 agreement {llama_agree:.3f}", file=sys.stderr)
    result = {"numpy_vs_llama_cpp_agreement": llama_agree, "gen": a.gen, "cases": [len(s[0]) for s in seqs]}
    if a.cmd == "prune":
        result["steps"] = prune(m, seqs, a.down_to, t0)
    else:
        result["files"] = compare(m, a.files, seqs, t0)
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
