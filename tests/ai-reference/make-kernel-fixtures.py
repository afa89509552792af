#!/usr/bin/env python3
"""Golden vectors for crates/ai's CPU kernels, computed by llama.cpp's own CPU backend.

Loads the prebuilt ggml CPU library that node-llama-cpp ships (the variant llama.cpp picks on
an AVX2/FMA/F16C machine: `libggml-cpu-haswell.so`) with ctypes and calls the functions the
runtime mirrors, on seeded random inputs:

- `quantize_row_q8_1` / `quantize_row_q8_0` (activations before a Q4_1 / Q8_0 matmul),
- `ggml_vec_dot_q4_1_q8_1` / `ggml_vec_dot_q8_0_q8_0` (one output of a weight matmul),
- `ggml_vec_swiglu_f32` (the gated MLP's SiLU(gate) * up),

and writes `tests/fixtures/ai/ggml-kernels.json` (floats as IEEE bit patterns, blocks as hex).
Standard library only. Run from this folder after `npm ci`:

    python3 make-kernel-fixtures.py [--out ../fixtures/ai/ggml-kernels.json]
"""

import argparse
import ctypes
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
BINS = os.path.join(HERE, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
VARIANT = "libggml-cpu-haswell.so"


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f16_bytes(x):
    return struct.pack("<e", x)


def rand_floats(rng, n, kind):
    if kind == "normal":
        return [rng.gauss(0.0, 1.0) for _ in range(n)]
    if kind == "wide":
        return [rng.gauss(0.0, 1.0) * 10 ** rng.uniform(-3, 3) for _ in range(n)]
    if kind == "small":
        return [rng.gauss(0.0, 1e-4) for _ in range(n)]
    if kind == "halves":
        # Values whose quantized magnitude lands on x.5 often (ties of the rounding).
        return [rng.choice([-1, 1]) * (rng.randrange(0, 255) / 2.0) for _ in range(n)]
    if kind == "zeros":
        return [0.0] * n
    if kind == "sparse":
        return [rng.gauss(0, 3) if rng.random() < 0.1 else 0.0 for _ in range(n)]
    raise ValueError(kind)


def as_f32(xs):
    # Round through f32 so the recorded bits are exactly what the library read.
    return [struct.unpack("<f", struct.pack("<f", x))[0] for x in xs]


def q4_1_blocks(rng, nb):
    out = bytearray()
    for _ in range(nb):
        d = rng.uniform(1e-4, 0.05)
        m = -rng.uniform(0.0, 0.8)
        out += f16_bytes(d) + f16_bytes(m) + bytes(rng.randrange(256) for _ in range(16))
    return bytes(out)


def q8_0_blocks(rng, nb):
    out = bytearray()
    for _ in range(nb):
        d = rng.uniform(1e-4, 0.05)
        out += f16_bytes(d) + bytes(rng.randrange(1, 256) for _ in range(32))  # no -128
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "../fixtures/ai/ggml-kernels.json"))
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--bins", default=BINS, help="folder of node-llama-cpp's linux-x64 libraries")
    args = ap.parse_args()

    ctypes.CDLL(os.path.join(args.bins, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(os.path.join(args.bins, VARIANT))
    lib.ggml_cpu_init()
    c_float_p = ctypes.POINTER(ctypes.c_float)
    lib.quantize_row_q8_1.argtypes = [c_float_p, ctypes.c_void_p, ctypes.c_int64]
    lib.quantize_row_q8_0.argtypes = [c_float_p, ctypes.c_void_p, ctypes.c_int64]
    dot_args = [ctypes.c_int, c_float_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.ggml_vec_dot_q4_1_q8_1.argtypes = dot_args
    lib.ggml_vec_dot_q8_0_q8_0.argtypes = dot_args
    lib.ggml_vec_swiglu_f32.argtypes = [ctypes.c_int, c_float_p, c_float_p, c_float_p]

    rng = random.Random(args.seed)

    def farr(xs):
        return (ctypes.c_float * len(xs))(*xs)

    def quantize(fn, xs, block_bytes):
        buf = ctypes.create_string_buffer(len(xs) // 32 * block_bytes)
        fn(farr(xs), buf, len(xs))
        return buf.raw

    cases = {"quantize_q8_1": [], "quantize_q8_0": [], "dot_q4_1_q8_1": [],
             "dot_q8_0_q8_0": [], "swiglu": []}
    kinds = ["normal", "wide", "small", "halves", "zeros", "sparse"]
    for kind in kinds:
        for nb in (1, 3, 18):
            xs = as_f32(rand_floats(rng, nb * 32, kind))
            bits = [f32_bits(x) for x in xs]
            cases["quantize_q8_1"].append({
                "x": bits, "q": quantize(lib.quantize_row_q8_1, xs, 36).hex()})
            cases["quantize_q8_0"].append({
                "x": bits, "q": quantize(lib.quantize_row_q8_0, xs, 34).hex()})
    for kind in kinds:
        for nb in (1, 2, 18, 48):
            xs = as_f32(rand_floats(rng, nb * 32, kind))
            w = q4_1_blocks(rng, nb)
            y = quantize(lib.quantize_row_q8_1, xs, 36)
            s = ctypes.c_float()
            lib.ggml_vec_dot_q4_1_q8_1(nb * 32, ctypes.byref(s), 0, w, 0, y, 0, 1)
            cases["dot_q4_1_q8_1"].append({
                "w": w.hex(), "x": [f32_bits(x) for x in xs], "dot": f32_bits(s.value)})
            w = q8_0_blocks(rng, nb)
            y = quantize(lib.quantize_row_q8_0, xs, 34)
            lib.ggml_vec_dot_q8_0_q8_0(nb * 32, ctypes.byref(s), 0, w, 0, y, 0, 1)
            cases["dot_q8_0_q8_0"].append({
                "w": w.hex(), "x": [f32_bits(x) for x in xs], "dot": f32_bits(s.value)})
    for n in (8, 37, 1536):
        g = as_f32([rng.gauss(0, 4) for _ in range(n)])
        # Include the saturating ranges of the vector exp (|x| > 126 and > 192).
        if n == 37:
            g[:6] = [-200.0, -130.0, -88.0, 89.0, 130.0, 200.0]
        u = as_f32([rng.gauss(0, 1) for _ in range(n)])
        y = (ctypes.c_float * n)()
        lib.ggml_vec_swiglu_f32(n, y, farr(g), farr(u))
        cases["swiglu"].append({"gate": [f32_bits(x) for x in g],
                                "up": [f32_bits(x) for x in u],
                                "y": [f32_bits(v) for v in y]})

    out = {
        "header": {
            "generator": "tests/ai-reference/make-kernel-fixtures.py",
            "library": f"node-llama-cpp 3.22.1 prebuilt {VARIANT} (llama.cpp release v0.5.0)",
            "seed": args.seed,
            "encoding": "floats are f32 bit patterns; blocks are ggml's byte layout in hex "
                        "(q8_1: f16 d, f16 s, 32 x i8; q8_0: f16 d, 32 x i8; q4_1: f16 d, "
                        "f16 m, 16 bytes of nibbles)",
        },
        **cases,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in cases.items()))


if __name__ == "__main__":
    main()
