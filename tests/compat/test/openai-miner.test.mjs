// The official OpenAI SDK (npm `openai`) against `noesis miner`'s inference server and
// against `noesis gateway` in front of it: chat, streaming, the errors for an unknown
// model and an unsupported parameter; the receipt it returns is checked with viem's
// verifyTypedData and with `noesis ai verify`. The miner registers on a fresh subnet of
// the node under test through its public JSON-RPC. Needs the SmolLM2 model installed
// (`noesis model fetch`) and NOESIS_BIN.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { verifyTypedData } from 'viem';
import { domain, types } from '../lib/receipt-types.mjs';

const RPC_URL = process.env.RPC_URL ?? 'http://127.0.0.1:8545';
const NOESIS_BIN = process.env.NOESIS_BIN;
const MODEL = 'smollm2-135m-instruct-q4_1';
const EMBEDDING_MODEL = 'all-minilm-l6-v2';
// Dev account 7 of the test mnemonic (m/44'/60'/0'/0/7).
const MINER_KEY = '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356';


let miner;
let gateway;
let client;
let viaGateway;
let announced;

async function firstLine(child, name) {
  const lines = createInterface({ input: child.stdout });
  return JSON.parse(await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  }));
}

before(async () => {
  assert.ok(NOESIS_BIN, 'NOESIS_BIN must name the noesis binary');
  const created = JSON.parse(execFileSync(NOESIS_BIN, ['subnet', 'create', '--rpc', RPC_URL]).toString());
  const port = 20000 + Math.floor(Math.random() * 20000);
  miner = spawn(NOESIS_BIN, ['miner', '--rpc', RPC_URL, '--netuid', String(created.netuid),
    '--key', MINER_KEY, '--listen', `127.0.0.1:${port}`, '--slots', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  announced = await firstLine(miner, 'noesis miner');
  client = new OpenAI({ baseURL: announced.endpoint, apiKey: 'unused', maxRetries: 0 });
  gateway = spawn(NOESIS_BIN, ['gateway', '--rpc', RPC_URL, '--netuid', String(created.netuid),
    '--listen', `127.0.0.1:${port + 1}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = await firstLine(gateway, 'noesis gateway');
  assert.equal(started.miners, 1);
  viaGateway = new OpenAI({ baseURL: started.endpoint, apiKey: 'unused', maxRetries: 0 });
});

after(() => { miner?.kill(); gateway?.kill(); });

// The text of a stream, the chunk with the receipt (the finish chunk) and the last one.
async function collect(stream) {
  let text = '';
  let receipted;
  let last;
  for await (const chunk of stream) {
    // Every chunk but an asked-for usage chunk has a choice, as OpenAI streams.
    if (!chunk.usage) assert.equal(chunk.choices.length, 1);
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.noesis) receipted = chunk;
    last = chunk;
  }
  return { text, receipted, last };
}

async function signatureHolds(receipt) {
  return verifyTypedData({
    address: receipt.receipt.signer, domain, types, primaryType: 'InferenceReceipt',
    message: receipt.receipt, signature: receipt.signature,
  });
}

test('openai: a chat completion with a receipt that viem and noesis ai verify accept', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  const answer = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: 'Answer in one sentence.' }, { role: 'user', content: 'What is a blockchain?' }],
    max_tokens: 24,
    temperature: 0.8,
    seed: 42,
  });
  const text = answer.choices[0].message.content;
  assert.ok(text.length > 0);
  assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens + answer.usage.completion_tokens);
  const receipt = answer.noesis.receipt;
  assert.equal(receipt.output.text, text);
  assert.equal(receipt.receipt.signer.toLowerCase(), '0x14dc79964da2c08b23698b3d3cc7ca32193d9955');
  assert.equal(await signatureHolds(receipt), true);
  assert.equal(await signatureHolds({ ...receipt, receipt: { ...receipt.receipt, completionTokens: 1 } }), false);
  const file = join(mkdtempSync(join(tmpdir(), 'noesis-receipt-')), 'receipt.json');
  writeFileSync(file, JSON.stringify(receipt));
  const verdict = JSON.parse(execFileSync(NOESIS_BIN, ['ai', 'verify', file]).toString());
  assert.equal(verdict.verdict, 'accept');
});

test('openai: a stream adds up to the receipted answer', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'List three fruits.' }],
    max_tokens: 20,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { text, receipted, last } = await collect(stream);
  assert.equal(receipted.noesis.receipt.output.text, text);
  assert.ok(receipted.choices[0].finish_reason);
  assert.equal(last.usage.completion_tokens, receipted.noesis.receipt.receipt.completionTokens);
  assert.equal(await signatureHolds(receipted.noesis.receipt), true);
});

test('openai: an unknown model is a 404 NotFoundError in OpenAI\'s shape', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
  );
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], n: 3 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n',
  );
});

test('openai through the gateway: chat and stream with receipts, 404 for an unknown model', async () => {
  const models = await viaGateway.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL, EMBEDDING_MODEL]);
  assert.equal((await viaGateway.models.retrieve(EMBEDDING_MODEL)).id, EMBEDDING_MODEL);
  await assert.rejects(viaGateway.models.retrieve('gpt-4o'), (e) => e instanceof OpenAI.NotFoundError);
  const answer = await viaGateway.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'What is Ethereum?' }], max_tokens: 16,
  });
  assert.match(answer.noesis.verdict, /^accepted: /);
  assert.equal(answer.noesis.miner_uid, announced.uid);
  const receipt = answer.noesis.receipt;
  assert.equal(receipt.output.text, answer.choices[0].message.content);
  assert.equal(await signatureHolds(receipt), true);
  const file = join(mkdtempSync(join(tmpdir(), 'noesis-receipt-')), 'receipt.json');
  writeFileSync(file, JSON.stringify(receipt));
  assert.equal(JSON.parse(execFileSync(NOESIS_BIN, ['ai', 'verify', file]).toString()).verdict, 'accept');
  const stream = await viaGateway.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Say yes.' }], max_tokens: 8, stream: true,
  });
  const { text, receipted, last } = await collect(stream);
  assert.equal(receipted.noesis.receipt.output.text, text);
  assert.match(receipted.noesis.verdict, /^accepted: /);
  assert.equal(last.usage, undefined, 'no usage chunk unless stream_options.include_usage');
  await assert.rejects(
    viaGateway.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
  );
});

const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

test('openai through the gateway: embeddings, base64 (the SDK default) and float alike', async () => {
  const texts = ['A cat sits on the mat.', 'A kitten rests on a rug.', 'Interest rates rose again.'];
  const batch = await viaGateway.embeddings.create({ model: EMBEDDING_MODEL, input: texts });
  assert.equal(batch.data.length, 3);
  assert.equal(batch.model, EMBEDDING_MODEL);
  assert.ok(batch.usage.prompt_tokens > 0);
  const vectors = batch.data.map((d) => d.embedding);
  for (const v of vectors) {
    assert.equal(v.length, 384);
    assert.ok(Math.abs(cosine(v, v) - 1) < 1e-3);
  }
  assert.ok(cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2);
  const floats = await viaGateway.embeddings.create({
    model: EMBEDDING_MODEL, input: texts[0], encoding_format: 'float',
  });
  floats.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - vectors[0][i]) < 1e-6));
  await assert.rejects(
    viaGateway.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
  );
  await assert.rejects(
    viaGateway.embeddings.create({ model: EMBEDDING_MODEL, input: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input',
  );
});
