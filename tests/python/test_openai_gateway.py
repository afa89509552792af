"""The Noesis gateway as a real client sees it: the official OpenAI Python SDK.

Run with tests/python/run.sh (it installs the pinned SDK in a venv), or with any Python
that has `openai` installed:

    NOESIS_GATEWAY_URL=http://127.0.0.1:28000/v1 \\
    NOESIS_BIN=$HOME/.cache/noesis/target/debug/noesis \\
        python3 -m unittest discover -v -s tests/python

against a running market, e.g. one started with
`noesis dev --datadir /tmp/py-dev --http-port 28545 --gateway-port 28000`.

Environment:
  NOESIS_GATEWAY_URL      the gateway's base URL, ending in /v1. Unset: every test is skipped.
  NOESIS_BIN              the noesis binary; the receipts are checked with `noesis ai verify`
                          (which needs the model installed). Unset: those checks are skipped.
  NOESIS_CHAT_MODEL       default smollm2-135m-instruct-q4_1
  NOESIS_EMBEDDING_MODEL  default all-minilm-l6-v2
  NOESIS_API_KEY          sent as the bearer token (the dev gateway takes any)

Only the standard library's unittest and the `openai` package.
"""

import base64
import json
import math
import os
import struct
import subprocess
import tempfile
import unittest

try:
    import openai
except ImportError:  # reported by setUpModule once the gateway is known to be wanted
    openai = None

GATEWAY_URL = os.environ.get("NOESIS_GATEWAY_URL", "").strip()
NOESIS_BIN = os.environ.get("NOESIS_BIN", "").strip()
CHAT_MODEL = os.environ.get("NOESIS_CHAT_MODEL", "smollm2-135m-instruct-q4_1")
EMBEDDING_MODEL = os.environ.get("NOESIS_EMBEDDING_MODEL", "all-minilm-l6-v2")
EMBEDDING_DIM = 384
MAX_TOKENS = 24
MESSAGES = [
    {"role": "system", "content": "You are a friendly assistant. Answer briefly."},
    {"role": "user", "content": "Say hello to a new user."},
]


def setUpModule():
    if not GATEWAY_URL:
        raise unittest.SkipTest(
            "NOESIS_GATEWAY_URL is not set: no Noesis gateway to test "
            "(e.g. NOESIS_GATEWAY_URL=http://127.0.0.1:28000/v1 with `noesis dev` running)"
        )
    if openai is None:
        raise ImportError(
            "the `openai` package is not installed: run tests/python/run.sh, "
            "or pip install -r tests/python/requirements.txt"
        )


def client(**kwargs):
    return openai.OpenAI(
        base_url=GATEWAY_URL,
        api_key=os.environ.get("NOESIS_API_KEY", "noesis-test"),
        timeout=120.0,
        **kwargs,
    )


def extra(model, name):
    """A top-level field the SDK's types do not declare (pydantic keeps it as an extra)."""
    fields = model.model_extra or {}
    return fields.get(name)


def verify_receipt(testcase, receipt):
    """`noesis ai verify` on the receipt file; returns its JSON verdict."""
    if not NOESIS_BIN:
        testcase.skipTest("NOESIS_BIN is not set: cannot run `noesis ai verify`")
    with tempfile.TemporaryDirectory(prefix="noesis-receipt-") as tmp:
        path = os.path.join(tmp, "receipt.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(receipt, f)
        done = subprocess.run(
            [NOESIS_BIN, "ai", "verify", path],
            capture_output=True,
            text=True,
            timeout=300,
        )
    detail = f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    testcase.assertEqual(done.returncode, 0, "noesis ai verify did not accept:\n" + detail)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    testcase.assertTrue(lines, "noesis ai verify printed no verdict:\n" + detail)
    verdict = json.loads(lines[-1])
    testcase.assertEqual(verdict.get("verdict"), "accept", detail)
    return verdict


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def max_abs_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


class ModelsTest(unittest.TestCase):
    def test_models_list_has_the_chat_and_embedding_models(self):
        page = client().models.list()
        models = list(page)
        ids = [m.id for m in models]
        self.assertIn(CHAT_MODEL, ids)
        self.assertIn(EMBEDDING_MODEL, ids)
        for m in models:
            self.assertEqual(m.object, "model")
            self.assertIsInstance(m.owned_by, str)


class ChatCompletionTest(unittest.TestCase):
    """One plain answer, asked once and checked by several tests."""

    @classmethod
    def setUpClass(cls):
        raw = client().chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
        )
        cls.headers = raw.headers
        cls.response = raw.parse()
        cls.noesis = extra(cls.response, "noesis")

    def test_answer_has_content_and_usage(self):
        r = self.response
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.model, CHAT_MODEL)
        self.assertTrue(r.id)
        self.assertEqual(len(r.choices), 1)
        choice = r.choices[0]
        self.assertEqual(choice.index, 0)
        self.assertEqual(choice.message.role, "assistant")
        self.assertIsInstance(choice.message.content, str)
        self.assertTrue(choice.message.content.strip(), "empty answer")
        self.assertIn(choice.finish_reason, ("stop", "length"))
        u = r.usage
        self.assertIsNotNone(u)
        self.assertGreater(u.prompt_tokens, 0)
        self.assertGreater(u.completion_tokens, 0)
        self.assertLessEqual(u.completion_tokens, MAX_TOKENS)
        self.assertEqual(u.total_tokens, u.prompt_tokens + u.completion_tokens)
        if choice.finish_reason == "length":
            self.assertEqual(u.completion_tokens, MAX_TOKENS)

    def test_noesis_extension_is_kept_by_the_sdk(self):
        self.assertIsInstance(self.noesis, dict, "no `noesis` object in the answer")
        # The same object through the SDK's other views of the response.
        self.assertEqual(self.response.to_dict()["noesis"], self.noesis)
        self.assertEqual(json.loads(self.response.to_json())["noesis"], self.noesis)
        self.assertTrue(self.noesis["verdict"].startswith("accepted"), self.noesis["verdict"])
        uid = self.noesis["miner_uid"]
        self.assertIsInstance(uid, int)
        self.assertGreaterEqual(uid, 0)
        self.assertEqual(self.headers.get("x-noesis-miner"), str(uid))

    def test_receipt_matches_the_answer(self):
        receipt = self.noesis["receipt"]
        content = self.response.choices[0].message.content
        self.assertEqual(receipt["output"]["text"], content)
        self.assertEqual(receipt["request"]["messages"], MESSAGES)
        self.assertEqual(receipt["request"]["max_tokens"], MAX_TOKENS)
        signed = receipt["receipt"]
        self.assertEqual(signed["promptTokens"], self.response.usage.prompt_tokens)
        self.assertEqual(signed["completionTokens"], self.response.usage.completion_tokens)
        self.assertEqual(len(receipt["output"]["tokens"]), signed["completionTokens"])
        self.assertRegex(receipt["signature"], r"^0x[0-9a-f]{130}$")
        # The plain-answer header carries the signed part of the same receipt.
        header = json.loads(self.headers["x-noesis-receipt"])
        self.assertEqual(header["receipt"], signed)
        self.assertEqual(header["signature"], receipt["signature"])

    def test_receipt_verifies(self):
        verdict = verify_receipt(self, self.noesis["receipt"])
        self.assertEqual(verdict["checked_tokens"], self.response.usage.completion_tokens)


class ChatStreamTest(unittest.TestCase):
    """One streamed answer, with usage asked for as OpenAI clients do."""

    @classmethod
    def setUpClass(cls):
        stream = client().chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        with stream:
            cls.chunks = list(stream)
        cls.last = cls.chunks[-1] if cls.chunks else None
        # The receipt rides on the finish chunk (the one before the usage chunk).
        cls.finish = cls.chunks[-2] if len(cls.chunks) >= 2 else None
        cls.noesis = extra(cls.finish, "noesis") if cls.finish else None

    def text(self):
        return "".join(
            c.choices[0].delta.content or "" for c in self.chunks if c.choices
        )

    def test_chunks_are_chat_completion_chunks(self):
        self.assertGreaterEqual(len(self.chunks), 2)
        ids = {c.id for c in self.chunks}
        self.assertEqual(len(ids), 1, f"chunks of one answer carry several ids: {ids}")
        for c in self.chunks:
            self.assertEqual(c.object, "chat.completion.chunk")
            self.assertEqual(c.model, CHAT_MODEL)
        with_choices = [c for c in self.chunks if c.choices]
        self.assertEqual(with_choices[0].choices[0].delta.role, "assistant")
        finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
        self.assertEqual(len(finishes), 1, f"finish reasons: {finishes}")
        self.assertIn(finishes[0], ("stop", "length"))
        self.assertTrue(self.text().strip(), "empty streamed answer")

    def test_finish_chunk_carries_noesis_and_last_chunk_usage(self):
        self.assertEqual(self.last.choices, [])
        u = self.last.usage
        self.assertIsNotNone(u, "no usage in the last chunk")
        self.assertGreater(u.prompt_tokens, 0)
        self.assertGreater(u.completion_tokens, 0)
        self.assertLessEqual(u.completion_tokens, MAX_TOKENS)
        self.assertEqual(u.total_tokens, u.prompt_tokens + u.completion_tokens)
        self.assertIsNone(extra(self.last, "noesis"))
        # Every other chunk has a choice, so `chunk.choices[0]` never fails on them.
        for c in self.chunks[:-1]:
            self.assertEqual(len(c.choices), 1)
            self.assertIsNone(c.usage)
        for c in self.chunks[:-2]:
            self.assertIsNone(extra(c, "noesis"))
        self.assertIsNotNone(self.finish.choices[0].finish_reason)
        self.assertIsInstance(self.noesis, dict, "no `noesis` object in the finish chunk")
        self.assertTrue(self.noesis["verdict"].startswith("accepted"), self.noesis["verdict"])
        self.assertIsInstance(self.noesis["miner_uid"], int)

    def test_streamed_text_is_the_receipt_output(self):
        receipt = self.noesis["receipt"]
        self.assertEqual(self.text(), receipt["output"]["text"])
        self.assertEqual(receipt["request"]["messages"], MESSAGES)
        self.assertEqual(receipt["receipt"]["completionTokens"], self.last.usage.completion_tokens)

    def test_stream_receipt_verifies(self):
        verify_receipt(self, self.noesis["receipt"])

    def test_receipt_comes_without_stream_options(self):
        # The receipt is the point of the gateway: it comes whether or not usage was asked
        # for; without it there is no usage chunk, and the quick-start loop
        # `chunk.choices[0].delta.content` works on every chunk.
        stream = client().chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, max_tokens=8, stream=True
        )
        with stream:
            chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        self.assertTrue(all(c.usage is None for c in chunks))
        noesis = extra(chunks[-1], "noesis")
        self.assertIsInstance(noesis, dict)
        self.assertEqual(text, noesis["receipt"]["output"]["text"])


class EmbeddingsTest(unittest.TestCase):
    SENTENCES = [
        "The cat sat on the mat.",
        "A cat was sitting on the rug.",
        "Quarterly revenue rose by eight percent.",
    ]

    def check_vector(self, v):
        self.assertEqual(len(v), EMBEDDING_DIM)
        self.assertTrue(all(isinstance(x, float) for x in v))
        self.assertAlmostEqual(norm(v), 1.0, delta=1e-3)

    def test_single_string(self):
        r = client().embeddings.create(model=EMBEDDING_MODEL, input="Hello, world.")
        self.assertEqual(r.object, "list")
        self.assertEqual(r.model, EMBEDDING_MODEL)
        self.assertEqual(len(r.data), 1)
        self.assertEqual(r.data[0].object, "embedding")
        self.assertEqual(r.data[0].index, 0)
        self.check_vector(r.data[0].embedding)
        self.assertGreater(r.usage.prompt_tokens, 0)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens)

    def test_batch_of_three(self):
        c = client()
        r = c.embeddings.create(model=EMBEDDING_MODEL, input=self.SENTENCES)
        self.assertEqual([d.index for d in r.data], [0, 1, 2])
        vectors = [d.embedding for d in r.data]
        for v in vectors:
            self.check_vector(v)
        similar = cosine(vectors[0], vectors[1])
        self.assertGreater(similar, cosine(vectors[0], vectors[2]))
        self.assertGreater(similar, cosine(vectors[1], vectors[2]))
        # A text's vector does not depend on the batch it came in.
        alone = c.embeddings.create(model=EMBEDDING_MODEL, input=self.SENTENCES[2])
        self.assertLess(max_abs_diff(alone.data[0].embedding, vectors[2]), 1e-5)

    def test_base64_and_float_encodings_agree(self):
        c = client()
        # The SDK asks for base64 by default and decodes it to floats itself.
        default = c.embeddings.create(model=EMBEDDING_MODEL, input=self.SENTENCES)
        floats = c.embeddings.create(
            model=EMBEDDING_MODEL, input=self.SENTENCES, encoding_format="float"
        )
        raw = c.embeddings.create(
            model=EMBEDDING_MODEL, input=self.SENTENCES, encoding_format="base64"
        )
        for i in range(len(self.SENTENCES)):
            with self.subTest(i=i):
                a = default.data[i].embedding
                b = floats.data[i].embedding
                self.assertEqual(len(a), EMBEDDING_DIM)
                self.assertLess(max_abs_diff(a, b), 1e-6)
                # Asked for explicitly, base64 is left as it came: little-endian float32.
                s = raw.data[i].embedding
                self.assertIsInstance(s, str)
                packed = base64.b64decode(s)
                self.assertEqual(len(packed), 4 * EMBEDDING_DIM)
                decoded = struct.unpack(f"<{EMBEDDING_DIM}f", packed)
                self.assertLess(max_abs_diff(decoded, b), 1e-6)


class ErrorsTest(unittest.TestCase):
    def assert_model_not_found(self, e):
        err = e.exception
        self.assertEqual(err.status_code, 404)
        self.assertEqual(err.code, "model_not_found")
        self.assertEqual(err.type, "invalid_request_error")
        self.assertEqual(err.param, "model")
        self.assertIsInstance(err.body, dict)
        self.assertIn("no-such-model", err.body.get("message", ""))

    def test_unknown_chat_model(self):
        with self.assertRaises(openai.NotFoundError) as e:
            client().chat.completions.create(
                model="no-such-model",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
            )
        self.assert_model_not_found(e)

    def test_unknown_chat_model_streaming(self):
        with self.assertRaises(openai.NotFoundError) as e:
            client().chat.completions.create(
                model="no-such-model",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
                stream=True,
            )
        self.assert_model_not_found(e)

    def test_unknown_embedding_model(self):
        with self.assertRaises(openai.NotFoundError) as e:
            client().embeddings.create(model="no-such-model", input="hi")
        self.assert_model_not_found(e)

    def test_malformed_chat_requests(self):
        hi = [{"role": "user", "content": "hi"}]
        cases = {
            "negative max_tokens": dict(messages=hi, max_tokens=-1),
            "zero max_tokens": dict(messages=hi, max_tokens=0),
            "no messages": dict(messages=[]),
            "unknown role": dict(messages=[{"role": "wizard", "content": "hi"}], max_tokens=4),
            "temperature out of range": dict(messages=hi, max_tokens=4, temperature=5),
        }
        c = client(max_retries=0)
        for name, kwargs in cases.items():
            with self.subTest(name):
                with self.assertRaises(openai.BadRequestError) as e:
                    c.chat.completions.create(model=CHAT_MODEL, **kwargs)
                self.assertEqual(e.exception.status_code, 400)
                self.assertEqual(e.exception.type, "invalid_request_error")
                self.assertTrue(e.exception.message)

    def test_malformed_embedding_requests(self):
        c = client(max_retries=0)
        for name, value in {"empty batch": [], "empty string": ""}.items():
            with self.subTest(name):
                with self.assertRaises(openai.BadRequestError) as e:
                    c.embeddings.create(model=EMBEDDING_MODEL, input=value)
                self.assertEqual(e.exception.status_code, 400)
                self.assertEqual(e.exception.param, "input")


if __name__ == "__main__":
    unittest.main(verbosity=2)
