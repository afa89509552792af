#!/usr/bin/env python3
"""Render a GGUF's own `tokenizer.chat_template` with Python jinja2.

Used by make-fixtures.mjs (node-llama-cpp does not render the GGUF's Jinja template by
default: its resolveChatWrapper() picks a built-in ChatML wrapper for SmolLM2, which does NOT
insert the template's default system prompt). This helper is the reference renderer.

    python3 render-chat-template.py MODEL.gguf < requests.json > rendered.json

requests.json: [{"messages": [{"role": ..., "content": ...}], "add_generation_prompt": true}, ...]

The Jinja environment mirrors the one Hugging Face transformers uses for chat templates
(`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)` plus the
`loopcontrols` extension, a `tojson` filter, `raise_exception` and `strftime_now` globals),
with `bos_token` / `eos_token` passed as variables (strings of the GGUF's BOS/EOS ids).
"""
import hashlib
import json
import sys
from datetime import datetime
from importlib.metadata import version

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from gguf import GGUFReader


def field_str(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def field_int(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return int(f.parts[f.data[0]][0])


def token_str(reader, idx):
    if idx is None:
        return None
    f = reader.fields["tokenizer.ggml.tokens"]
    return bytes(f.parts[f.data[idx]]).decode("utf-8")


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


ENV_OPTIONS = {
    "environment": "jinja2.sandbox.ImmutableSandboxedEnvironment",
    "trim_blocks": True,
    "lstrip_blocks": True,
    "extensions": ["jinja2.ext.loopcontrols"],
    "filters": ["tojson"],
    "globals": ["raise_exception", "strftime_now"],
    "variables": ["messages", "add_generation_prompt", "bos_token", "eos_token"],
}


def main():
    model_path = sys.argv[1]
    requests = json.load(sys.stdin)
    reader = GGUFReader(model_path)
    template = field_str(reader, "tokenizer.chat_template")
    if template is None:
        sys.exit("GGUF has no tokenizer.chat_template")
    bos = token_str(reader, field_int(reader, "tokenizer.ggml.bos_token_id"))
    eos = token_str(reader, field_int(reader, "tokenizer.ggml.eos_token_id"))

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    compiled = env.from_string(template)

    rendered = []
    for req in requests:
        text = compiled.render(messages=req["messages"],
                               add_generation_prompt=req.get("add_generation_prompt", True),
                               bos_token=bos, eos_token=eos)
        rendered.append(text)

    json.dump({
        "renderer": "python jinja2 (render-chat-template.py)",
        "template_source": "GGUF metadata key tokenizer.chat_template, read with the PyPI gguf package (GGUFReader)",
        "jinja2_version": version("jinja2"),
        "gguf_version": version("gguf"),
        "python_version": sys.version.split()[0],
        "env_options": ENV_OPTIONS,
        "bos_token": bos,
        "eos_token": eos,
        "template": template,
        "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
        "rendered": rendered,
    }, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
