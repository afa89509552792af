#!/usr/bin/env python3
"""Writes seeds/gguf_header/: small GGUF files for the gguf_header fuzz target.

Synthetic files cover every metadata value type (nested arrays included), the llama
hyperparameters, a byte-level BPE tokenizer with control tokens, a chat template, and
tensors of several ggml types with their data; with a model path, the first 4 KiB of a
real GGUF header is added too (truncated, so it exercises the error paths).

    python3 fuzz/gen_gguf_seeds.py [fuzz/seeds/gguf_header] [~/.noesis/dev/models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds/gguf_header")
REAL = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser(
    "~/.noesis/dev/models/SmolLM2-135M-Instruct.Q4_1.gguf")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
PACK = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
        BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
# ggml type id -> (block size, bytes per block)
TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34), 12: (256, 144)}


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(ty, v):
    if ty == STR:
        return string(v)
    if ty == ARR:
        elem_ty, items = v
        return struct.pack("<IQ", elem_ty, len(items)) + b"".join(value(elem_ty, i) for i in items)
    return struct.pack(PACK[ty], v)


def gguf(kvs, tensors, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, ty, v in kvs:
        out += string(key) + struct.pack("<I", ty) + value(ty, v)
    offset, infos, blobs = 0, b"", []
    for name, dims, ty, seed in tensors:
        block, size = TYPES[ty]
        n = 1
        for d in dims:
            n *= d
        nbytes = n // block * size
        data = bytes((seed * 31 + i * 7) % 251 for i in range(nbytes))
        if ty == 1:  # keep f16 finite: clear the exponent's top bit
            data = bytes(b & 0xBF if i % 2 else b for i, b in enumerate(data))
        infos += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", ty, offset)
        blobs.append((offset, data))
        offset += -(-nbytes // alignment) * alignment
    out += infos
    out += b"\0" * (-len(out) % alignment)
    start = len(out)
    for off, data in blobs:
        out += b"\0" * (start + off - len(out)) + data
    return out


TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\\nYou are helpful<|im_end|>\\n' }}{% endif %}"
            "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "H", "e", "l", "o", ",", "Ġ", "w", "r", "d",
          "!", "1", "2", "3", "\u010a", "u", "s", "i", "h", "He", "ll", "Hell", "Hello", "Ġw", "or", "Ġwor"]
MERGES = ["H e", "l l", "He ll", "Hell o", "Ġ w", "o r", "Ġw or"]


def tokenizer_kvs(pre="smollm"):
    return [
        ("tokenizer.ggml.model", STR, "gpt2"),
        ("tokenizer.ggml.pre", STR, pre),
        ("tokenizer.ggml.tokens", ARR, (STR, TOKENS)),
        ("tokenizer.ggml.token_type", ARR, (I32, [3, 3, 3] + [1] * (len(TOKENS) - 3))),
        ("tokenizer.ggml.merges", ARR, (STR, MERGES)),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
    ]


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "empty_v3": gguf([], []),
        "metadata_all_types": gguf([
            ("u8", U8, 200), ("i8", I8, -5), ("u16", U16, 60000), ("i16", I16, -300),
            ("u32", U32, 4000000000), ("i32", I32, -7), ("f32", F32, 1.5), ("bool", BOOL, True),
            ("str", STR, "héllo"), ("u64", U64, 2**63), ("i64", I64, -2**40), ("f64", F64, 2.5e-9),
            ("arr_u8", ARR, (U8, [1, 2, 3])), ("arr_str", ARR, (STR, ["a", "", "bc"])),
            ("arr_arr", ARR, (ARR, [(I32, [1, -1]), (I32, [])])), ("arr_empty", ARR, (F32, [])),
        ], []),
        "tiny_llama": gguf([
            ("general.architecture", STR, "llama"),
            ("general.name", STR, "tiny"),
            ("general.alignment", U32, 32),
            ("llama.block_count", U32, 1),
            ("llama.context_length", U32, 64),
            ("llama.embedding_length", U32, 32),
            ("llama.feed_forward_length", U32, 64),
            ("llama.attention.head_count", U32, 4),
            ("llama.attention.head_count_kv", U32, 2),
            ("llama.rope.freq_base", F32, 10000.0),
            ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
            ("llama.vocab_size", U32, len(TOKENS)),
            *tokenizer_kvs(),
            ("tokenizer.chat_template", STR, TEMPLATE),
        ], [
            ("token_embd.weight", [32, len(TOKENS)], 2, 1),
            ("output_norm.weight", [32], 0, 2),
            ("blk.0.attn_norm.weight", [32], 0, 3),
            ("blk.0.attn_q.weight", [32, 32], 3, 4),
            ("blk.0.attn_k.weight", [32, 16], 8, 5),
            ("blk.0.ffn_down.weight", [64, 32], 1, 6),
        ]),
        "tensors_quantized_align64": gguf([
            ("general.alignment", U32, 64),
            ("general.architecture", STR, "mamba"),
        ], [
            ("f32", [4, 2], 0, 1), ("f16", [8], 1, 2), ("q4_0", [32, 2], 2, 3),
            ("q4_1", [64], 3, 4), ("q8_0", [32], 8, 5), ("q4_k", [256], 12, 6),
        ], alignment=64),
        "tokenizer_llama3_pre": gguf([("general.architecture", STR, "llama"),
                                      *tokenizer_kvs("llama-bpe")], []),
        "v2_header": b"GGUF" + struct.pack("<IQQ", 2, 0, 1) + string("general.architecture")
        + struct.pack("<I", STR) + string("llama"),
    }
    if os.path.isfile(REAL):
        with open(REAL, "rb") as f:
            seeds["smollm2_first_4k"] = f.read(4096)
    else:
        print(f"no {REAL}: skipping the real-header seed", file=sys.stderr)
    total = 0
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
        print(f"{name}: {len(data)} bytes", file=sys.stderr)
    print(f"{len(seeds)} seeds, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
