#!/usr/bin/env python3
"""Adversary models for the proof-of-inference detection matrix.

    make-adversaries.py MODEL OUTDIR [--only NAME[,NAME...]] [--list] [--allow-other-model]

Reads the real model (SmolLM2-135M-Instruct Q4_1, sha256 b179c952...db53) and writes
deterministic variants of it into OUTDIR, plus OUTDIR/manifest.json (name, sha256, size and
what changed, for every file). Every output keeps the real model's metadata, tokenizer and chat
template byte for byte (except the keys named in its recipe: `general.file_type` for a
requantization, `llama.block_count` for a layer drop), its tensor names, order and shapes.

Two ways of writing, both exact:
  * in place: the file is copied and some tensor bytes are overwritten with data of the same
    type and size (re-randomized quant blocks, scaled F32 norms); the header is untouched.
  * rewrite: a new file is laid out by hand (GGUF v3, alignment 32 as in the original): the
    metadata key/values are copied as raw bytes from the original (only the overridden keys
    are re-encoded), then the tensor descriptors and the data, each tensor 32-byte aligned.
    Used for requantizations (other tensor sizes) and for dropping layers.

Randomness comes from SHAKE-256 keyed by a fixed per-recipe label, not from numpy's RNG, so
the bytes do not depend on the numpy version. Requantization uses PyPI `gguf`'s
`gguf.quants` (pure numpy, elementwise IEEE operations): same versions, same bytes;
`EXPECTED_SHA256` pins every file and a mismatch is an error (exit 1).

Takes about 1.5 minutes of CPU (3 minutes wall on this busy 2-core machine) for all 12 files,
1.3 GB in all; `--only` makes a subset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
ALIGNMENT = 32  # GGUF default; the real model has no `general.alignment` key
N_LAYERS = 30

# What every file must hash to, from the pinned requirements (two runs on this machine gave the
# same bytes). A mismatch is an error: the README's measurements are for exactly these files.
EXPECTED_SHA256 = {
    "perturbed-rerandom-L15": "08d827bd8a0fe41727cdb556e823c4f91efa8e1c741566357e72dfb94b015ba9",
    "perturbed-rerandom-L5": "828166405063a61eca6a996dac2c295170ef38af6fe6c7a83750e334abcd6acf",
    "perturbed-rerandom-L15-1block": "04ba18a0462e1f6d696f5b3b47b09b7e075d729eda546c83e131e2b2a7f5ddc8",
    "perturbed-norm-1.02-L10": "f601934865deed3a70ecb7737a4ca699f084579ac46b314ba75ac0687f91c2cf",
    "perturbed-norm-1.02-output": "15bca996ba019bad8bce58e129f2afec1fb7486d395277188b70e386fcce7b12",
    "requant-q8_0": "0c1d3326cd9793cfb7296113c063dd5c24e2bd734b48ec1a3d01b7158eca9387",
    "requant-q4_0": "c624c2bea4349b36453448197f53b3935a96da7934904c124a612716c348a8ff",
    "reprec-f16": "ac93aa7cb284eff1942ea6bcc463e516e83e22d13832f15ebadd8e19e27aef4a",
    "cheap-L27": "bf0dfa6955d9efcfe50bc08781cc74fa12201699168c17021f93b0c8a8a18279",
    "cheap-L24": "6bf231130165b6bd49d7aa01e2be181e0cd0a91b2d0ee43258caf2cf3a9bacee",
    "cheap-L20": "bb37348059d4fd0ffc6d8596f50e393a364c9685f3cd4cb3f53433c706c118a6",
    "cheap-L15": "50c570a4c39c714ccafd4a90a754251c1a528cfc0f36dbc756c95d6576feb854",
}

# general.file_type values (llama.cpp's LLAMA_FTYPE_*), written for whole-model requantizations.
FTYPE = {QT.F16: 1, QT.Q4_0: 2, QT.Q4_1: 3, QT.Q8_0: 7}


@dataclass
class Recipe:
    """One adversary file."""

    name: str
    what: str
    # in-place edits: (tensor name, op, params)
    patches: list[tuple[str, str, dict]] = field(default_factory=list)
    # rewrite: requantize every tensor of type `from` into `to`
    requant: tuple[QT, QT] | None = None
    # rewrite: keep only these layers (renumbered 0..k-1)
    keep_layers: list[int] | None = None
    role: str = ""


# Layers kept by the cheap decoders: the greedy search of `numpy-llama.py prune` (numbers from
# its output in prune.json: top-1 agreement with the real model on its own greedy continuations,
# teacher-forced; the full model is 1.00 and dropping even one layer costs 20 points).
CHEAP_KEEP: dict[int, list[int]] = {
    27: [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],  # agreement 0.67
    24: [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],  # agreement 0.52
    20: [0, 1, 2, 4, 5, 8, 9, 10, 11, 12, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29],  # agreement 0.35
    15: [0, 1, 2, 4, 8, 9, 11, 12, 19, 21, 23, 24, 27, 28, 29],  # agreement 0.16
}


RECIPES: list[Recipe] = [
    Recipe(
        "perturbed-rerandom-L15",
        "blk.15.ffn_down.weight: 415 of 27648 Q4_1 blocks (1.5 %) get random 4-bit values, "
        "their own scale d and min m kept",
        patches=[("blk.15.ffn_down.weight", "rerandom", {"fraction": 0.015})],
        role="weights perturbed in one FFN matrix",
    ),
    Recipe(
        "perturbed-rerandom-L5",
        "blk.5.attn_q.weight: 156 of 10368 Q4_1 blocks (1.5 %) get random 4-bit values, "
        "their own scale d and min m kept",
        patches=[("blk.5.attn_q.weight", "rerandom", {"fraction": 0.015})],
        role="weights perturbed in one attention matrix",
    ),
    Recipe(
        "perturbed-rerandom-L15-1block",
        "blk.15.ffn_down.weight: 1 of 27648 Q4_1 blocks (32 weights) gets random 4-bit values",
        patches=[("blk.15.ffn_down.weight", "rerandom", {"count": 1})],
        role="smallest possible weight edit (sensitivity floor)",
    ),
    Recipe(
        "perturbed-norm-1.02-L10",
        "blk.10.attn_norm.weight (F32, 576) multiplied by 1.02",
        patches=[("blk.10.attn_norm.weight", "scale", {"factor": 1.02})],
        role="one RMSNorm scaled inside the network",
    ),
    Recipe(
        "perturbed-norm-1.02-output",
        "output_norm.weight (F32, 576) multiplied by 1.02: every logit is scaled by 1.02 "
        "(greedy argmax unchanged; like sampling at temperature T/1.02)",
        patches=[("output_norm.weight", "scale", {"factor": 1.02})],
        role="final norm scaled: hidden states of all 30 layers unchanged, logits x1.02",
    ),
    Recipe(
        "requant-q8_0",
        "every Q4_1 tensor dequantized and requantized to Q8_0 (token_embd already Q8_0, "
        "norms F32 kept); general.file_type 3 -> 7",
        requant=(QT.Q4_1, QT.Q8_0),
        role="different quantization of the same weights (finer)",
    ),
    Recipe(
        "requant-q4_0",
        "every Q4_1 tensor dequantized and requantized to Q4_0 (token_embd Q8_0 and norms F32 "
        "kept); general.file_type 3 -> 2",
        requant=(QT.Q4_1, QT.Q4_0),
        role="different quantization (coarser); also a second cheap decoder",
    ),
    Recipe(
        "reprec-f16",
        "every Q4_1 tensor dequantized and stored as F16 (token_embd Q8_0 and norms F32 kept); "
        "general.file_type 3 -> 1",
        requant=(QT.Q4_1, QT.F16),
        role="near-honest boundary case: the real weights up to f16 rounding, float matmuls "
        "instead of Q4_1 x Q8_1",
    ),
]

for _k, _layers in CHEAP_KEEP.items():
    _dropped = [i for i in range(N_LAYERS) if i not in _layers]
    RECIPES.append(
        Recipe(
            f"cheap-L{_k}",
            f"layers {_dropped} dropped, the other {_k} renumbered blk.0..blk.{_k - 1}; "
            f"llama.block_count 30 -> {_k}",
            keep_layers=_layers,
            role="cheap decoder for 'cheap decoding with an honest proof'",
        )
    )


# ---------------------------------------------------------------------------------------------
# deterministic randomness


def shake(label: str, n: int) -> bytes:
    return hashlib.shake_256(f"noesis-ai-adversaries/{label}".encode()).digest(n)


def pick_blocks(label: str, n_blocks: int, count: int) -> np.ndarray:
    """`count` distinct block indices out of `n_blocks`, sorted: the blocks with the smallest
    64-bit keys from SHAKE-256(label)."""
    keys = np.frombuffer(shake(label + "/pick", 8 * n_blocks), dtype="<u8")
    return np.sort(np.argsort(keys, kind="stable")[:count])


# ---------------------------------------------------------------------------------------------
# in-place edits


def rerandom(buf: bytearray, t: gguf.ReaderTensor, label: str, fraction=None, count=None) -> str:
    qt = QT(t.tensor_type)
    if qt not in (QT.Q4_0, QT.Q4_1):
        sys.exit(f"rerandom: {t.name} is {qt.name}, only Q4_0/Q4_1 are handled")
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qt]
    scale_bytes = 2 if qt == QT.Q4_0 else 4  # f16 d (and f16 m for Q4_1) lead the block
    n_blocks = t.n_bytes // block_bytes
    if count is None:
        count = max(1, round(fraction * n_blocks))
    idx = pick_blocks(label, n_blocks, count)
    qs_len = block_bytes - scale_bytes
    noise = np.frombuffer(shake(label + "/qs", qs_len * count), dtype=np.uint8).reshape(count, qs_len)
    base = int(t.data_offset)
    changed = 0
    for row, b in zip(noise, idx):
        off = base + int(b) * block_bytes + scale_bytes
        old = bytes(buf[off : off + qs_len])
        new = row.tobytes()
        if new == old:  # astronomically unlikely, but then the file would not differ
            new = bytes(x ^ 0x11 for x in new)
        buf[off : off + qs_len] = new
        changed += 1
    return f"{changed} of {n_blocks} blocks, indices {idx[:8].tolist()}{'...' if count > 8 else ''}"


def scale(buf: bytearray, t: gguf.ReaderTensor, label: str, factor: float) -> str:
    if QT(t.tensor_type) != QT.F32:
        sys.exit(f"scale: {t.name} is not F32")
    lo, hi = int(t.data_offset), int(t.data_offset) + int(t.n_bytes)
    w = np.frombuffer(bytes(buf[lo:hi]), dtype="<f4")
    buf[lo:hi] = (w * np.float32(factor)).astype("<f4").tobytes()
    return f"{w.size} f32 values x {np.float32(factor)}"


# ---------------------------------------------------------------------------------------------
# rewriting


def enc_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def enc_kv_u32(key: str, value: int) -> bytes:
    return enc_str(key) + struct.pack("<I", int(VT.UINT32)) + struct.pack("<I", value)


def field_bytes(raw: memoryview, f: gguf.ReaderField) -> bytes:
    size = sum(int(p.nbytes) for p in f.parts)
    b = bytes(raw[f.offset : f.offset + size])
    assert b == b"".join(p.tobytes() for p in f.parts), f.name
    return b


def pad(n: int) -> int:
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def rewrite(
    reader: gguf.GGUFReader,
    raw: memoryview,
    out: Path,
    kv_override: dict[str, int],
    tensors: list[tuple[str, list[int], QT, bytes | memoryview]],
) -> None:
    """Writes a GGUF v3 file: the original key/values (raw bytes, in the original order, the
    keys in `kv_override` re-encoded as UINT32), then `tensors` as (name, ggml dims, type, data)."""
    kvs = []
    for key, f in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if key in kv_override:
            if f.types != [VT.UINT32]:
                sys.exit(f"{key} is {f.types}, expected UINT32")
            kvs.append(enc_kv_u32(key, kv_override[key]))
        else:
            kvs.append(field_bytes(raw, f))
    head = bytearray()
    head += struct.pack("<IIQQ", gguf.GGUF_MAGIC, 3, len(tensors), len(kvs))
    for kv in kvs:
        head += kv
    offset = 0
    offsets = []
    for name, dims, qt, data in tensors:
        head += enc_str(name)
        head += struct.pack("<I", len(dims))
        for d in dims:
            head += struct.pack("<Q", d)
        head += struct.pack("<IQ", int(qt), offset)
        offsets.append(offset)
        offset += len(data) + pad(len(data))
    head += b"\0" * pad(len(head))
    with open(out, "wb") as fh:
        fh.write(head)
        for (_, _, _, data), off in zip(tensors, offsets):
            fh.write(data)
            fh.write(b"\0" * pad(len(data)))


def requantized(t: gguf.ReaderTensor, frm: QT, to: QT) -> tuple[QT, bytes | memoryview]:
    qt = QT(t.tensor_type)
    if qt != frm:
        return qt, t.data.tobytes()
    f32 = gguf.quants.dequantize(t.data, qt)
    return to, np.ascontiguousarray(gguf.quants.quantize(f32, to)).tobytes()


# ---------------------------------------------------------------------------------------------


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make(recipe: Recipe, model: Path, reader: gguf.GGUFReader, raw: memoryview, outdir: Path) -> dict:
    out = outdir / f"{recipe.name}.gguf"
    by_name = {t.name: t for t in reader.tensors}
    notes = []
    t0 = time.monotonic()
    if recipe.patches:
        buf = bytearray(raw)
        for tname, op, params in recipe.patches:
            fn = {"rerandom": rerandom, "scale": scale}[op]
            notes.append(f"{tname}: " + fn(buf, by_name[tname], f"{recipe.name}/{tname}", **params))
        out.write_bytes(buf)
    elif recipe.requant:
        frm, to = recipe.requant
        tensors = []
        for t in reader.tensors:
            qt, data = requantized(t, frm, to)
            tensors.append((t.name, [int(x) for x in t.shape], qt, data))
        old_ft = reader.fields["general.file_type"].contents()
        if old_ft != FTYPE[frm]:
            sys.exit(f"general.file_type is {old_ft}, expected {FTYPE[frm]}")
        rewrite(reader, raw, out, {"general.file_type": FTYPE[to]}, tensors)
    elif recipe.keep_layers is not None:
        new_index = {old: new for new, old in enumerate(recipe.keep_layers)}
        tensors = []
        for t in reader.tensors:
            name = t.name
            if name.startswith("blk."):
                _, n, rest = name.split(".", 2)
                if int(n) not in new_index:
                    continue
                name = f"blk.{new_index[int(n)]}.{rest}"
            tensors.append((name, [int(x) for x in t.shape], QT(t.tensor_type), t.data.tobytes()))
        rewrite(reader, raw, out, {"llama.block_count": len(recipe.keep_layers)}, tensors)
    else:
        raise AssertionError(recipe.name)
    check(reader, out, recipe)
    digest = sha256_file(out)
    entry = {
        "file": out.name,
        "sha256": digest,
        "bytes": out.stat().st_size,
        "what": recipe.what,
        "role": recipe.role,
        "details": notes,
        "seconds": round(time.monotonic() - t0, 2),
    }
    print(f"{out.name}  {digest}  {entry['bytes']} bytes  {entry['seconds']} s", file=sys.stderr)
    entry["expected_sha256"] = digest == EXPECTED_SHA256.get(recipe.name)
    return entry


def check(orig: gguf.GGUFReader, path: Path, recipe: Recipe) -> None:
    """Re-reads the written file and checks it against the original: every key/value equal
    (except the overridden one), tensors with the same names (renumbered for a layer drop),
    shapes and order."""
    new = gguf.GGUFReader(path)
    changed = {"general.file_type"} if recipe.requant else set()
    if recipe.keep_layers is not None:
        changed = {"llama.block_count"}
    ok = [k for k in orig.fields if not k.startswith("GGUF.")]
    nk = [k for k in new.fields if not k.startswith("GGUF.")]
    assert ok == nk, "key order differs"
    for k in ok:
        if k in changed:
            continue
        a, b = orig.fields[k], new.fields[k]
        assert a.types == b.types and all(
            np.array_equal(x, y) for x, y in zip(a.parts, b.parts)
        ), f"key {k} differs"
    assert [k for k in nk if k == "general.architecture"] == ["general.architecture"]
    if recipe.keep_layers is None:
        names = [t.name for t in orig.tensors]
    else:
        keep = set(recipe.keep_layers)
        names = []
        for t in orig.tensors:
            if t.name.startswith("blk."):
                n = int(t.name.split(".")[1])
                if n not in keep:
                    continue
                names.append(f"blk.{recipe.keep_layers.index(n)}." + t.name.split(".", 2)[2])
            else:
                names.append(t.name)
    assert [t.name for t in new.tensors] == names, "tensor names differ"
    oshape = {t.name: list(t.shape) for t in orig.tensors}
    for t in new.tensors:
        if recipe.keep_layers is None:
            assert list(t.shape) == oshape[t.name], t.name
    assert new.alignment == ALIGNMENT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, nargs="?")
    ap.add_argument("outdir", type=Path, nargs="?")
    ap.add_argument("--only", help="comma-separated recipe names (default: all)")
    ap.add_argument("--list", action="store_true", help="print the recipes and exit")
    ap.add_argument("--allow-other-model", action="store_true")
    a = ap.parse_args()
    if a.list:
        for r in RECIPES:
            print(f"{r.name}\t{r.what}")
        return
    if a.model is None or a.outdir is None:
        ap.error("MODEL and OUTDIR are required")
    recipes = RECIPES
    if a.only:
        wanted = a.only.split(",")
        unknown = set(wanted) - {r.name for r in RECIPES}
        if unknown:
            ap.error(f"unknown recipe(s): {sorted(unknown)}")
        recipes = [r for r in RECIPES if r.name in wanted]
    digest = sha256_file(a.model)
    if digest != MODEL_SHA256 and not a.allow_other_model:
        sys.exit(f"{a.model} has sha256 {digest}, expected {MODEL_SHA256} (--allow-other-model)")
    a.outdir.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(a.model)
    raw = memoryview(np.memmap(a.model, dtype=np.uint8, mode="r"))
    assert reader.alignment == ALIGNMENT and reader.fields["llama.block_count"].contents() == N_LAYERS
    t0 = time.monotonic()
    entries = [make(r, a.model, reader, raw, a.outdir) for r in recipes]
    manifest_path = a.outdir / "manifest.json"
    manifest = {"files": []}
    if manifest_path.exists() and a.only:
        manifest = json.loads(manifest_path.read_text())
    done = {e["file"] for e in entries}
    manifest = {
        "generator": "tests/ai-adversaries/make-adversaries.py",
        "model": {"file": a.model.name, "sha256": digest},
        "versions": {"gguf": gguf_version(), "numpy": np.__version__, "python": sys.version.split()[0]},
        "files": [e for e in manifest.get("files", []) if e["file"] not in done] + entries,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(entries)} file(s) in {time.monotonic() - t0:.1f} s -> {a.outdir}", file=sys.stderr)
    wrong = [e["file"] for e in entries if not e["expected_sha256"]]
    if wrong and not a.allow_other_model:
        sys.exit(f"sha256 differs from EXPECTED_SHA256 for {wrong}: check the package versions "
                 "(pip install --require-hashes -r requirements.txt)")


def gguf_version() -> str:
    from importlib.metadata import version

    return version("gguf")


if __name__ == "__main__":
    main()
