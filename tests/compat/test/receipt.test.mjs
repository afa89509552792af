// Inference receipts are EIP-712 typed data: wallet libraries check them unaided.
// The receipt is tests/fixtures/ai/receipt.json, written by noesis-ai's own signer
// (crates/ai/src/proof/receipt.rs, `the_wallet_interop_fixture_is_this_sample`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { verifyTypedData as viemVerify, hashTypedData } from 'viem';
import { verifyTypedData as ethersVerify, TypedDataEncoder } from 'ethers';
import { domain, types } from '../lib/receipt-types.mjs';

const file = JSON.parse(readFileSync(new URL('../../fixtures/ai/receipt.json', import.meta.url)));

const message = file.receipt;

test('viem verifies a Noesis inference receipt and rejects a tampered one', async () => {
  const ok = await viemVerify({
    address: message.signer, domain, types, primaryType: 'InferenceReceipt', message, signature: file.signature,
  });
  assert.equal(ok, true);
  const tampered = { ...message, completionTokens: message.completionTokens + 1 };
  const bad = await viemVerify({
    address: message.signer, domain, types, primaryType: 'InferenceReceipt', message: tampered, signature: file.signature,
  });
  assert.equal(bad, false);
});

test('ethers recovers the signer of a Noesis inference receipt', () => {
  assert.equal(ethersVerify(domain, types, message, file.signature).toLowerCase(), message.signer.toLowerCase());
  assert.equal(
    TypedDataEncoder.hash(domain, types, message),
    hashTypedData({ domain, types, primaryType: 'InferenceReceipt', message }),
  );
});
