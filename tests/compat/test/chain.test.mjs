// Chain identity, dev-account derivation and balances, via viem, ethers and cast.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { HDNodeWallet, JsonRpcProvider } from 'ethers';
import { parseEther } from 'viem';
import { cast } from '../lib/foundry.mjs';
import {
  ACCOUNT,
  CHAIN_ID,
  MNEMONIC,
  RPC_URL,
  TIMEOUT,
  devAccount,
  ethersClients,
  freshAddress,
  viemClients,
} from '../lib/env.mjs';

const { publicClient } = viemClients(ACCOUNT.readOnly);
const { provider } = ethersClients(ACCOUNT.readOnly);
after(() => provider.destroy());

test('dev accounts derive to the well-known addresses (offline)', () => {
  assert.equal(devAccount(0).address, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
  for (let i = 0; i < 10; i++) {
    const ethersWallet = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
    assert.equal(ethersWallet.address, devAccount(i).address, `account ${i}`);
    assert.equal(ethersWallet.privateKey, devAccount(i).privateKey, `account ${i} key`);
  }
});

test('eth_chainId: viem, ethers and cast agree with CHAIN_ID', { timeout: TIMEOUT }, async () => {
  assert.equal(await publicClient.getChainId(), CHAIN_ID);

  // A provider without a preset network detects the chain id itself.
  const detecting = new JsonRpcProvider(RPC_URL);
  try {
    assert.equal((await detecting.getNetwork()).chainId, BigInt(CHAIN_ID));
  } finally {
    detecting.destroy();
  }

  assert.equal(await cast(['chain-id', '--rpc-url', RPC_URL]), String(CHAIN_ID));
});

test('eth_getBalance: every dev account is funded; viem, ethers and cast agree', { timeout: TIMEOUT }, async () => {
  for (let i = 0; i < 10; i++) {
    const { address } = devAccount(i);
    const balance = await publicClient.getBalance({ address });
    assert.ok(balance >= parseEther('100'), `dev account ${i} (${address}) has only ${balance} wei`);
  }

  // Account `readOnly` never sends, so its balance is stable across the three clients.
  const { address } = devAccount(ACCOUNT.readOnly);
  const viaViem = await publicClient.getBalance({ address });
  const viaEthers = await provider.getBalance(address);
  const viaCast = BigInt(await cast(['balance', address, '--rpc-url', RPC_URL]));
  assert.equal(viaEthers, viaViem);
  assert.equal(viaCast, viaViem);
});

test('a fresh address has zero balance, zero nonce and no code', { timeout: TIMEOUT }, async () => {
  const address = freshAddress();
  assert.equal(await publicClient.getBalance({ address }), 0n);
  assert.equal(await publicClient.getTransactionCount({ address }), 0);
  assert.equal(await publicClient.getCode({ address }), undefined); // viem maps "0x" to undefined
  assert.equal(await provider.getCode(address), '0x');
  assert.equal(await cast(['balance', address, '--rpc-url', RPC_URL]), '0');
});

test('eth_blockNumber: viem, ethers and cast see the same chain head', { timeout: TIMEOUT }, async () => {
  const viaViem = await publicClient.getBlockNumber({ cacheTime: 0 });
  const viaEthers = BigInt(await provider.getBlockNumber());
  const viaCast = BigInt(await cast(['block-number', '--rpc-url', RPC_URL]));
  // Other test files may mine blocks concurrently, so only monotonicity is guaranteed.
  assert.ok(viaEthers >= viaViem, `ethers ${viaEthers} < viem ${viaViem}`);
  assert.ok(viaCast >= viaEthers, `cast ${viaCast} < ethers ${viaEthers}`);
});

test('JSON-RPC batch requests are answered with matching ids', { timeout: TIMEOUT }, async () => {
  const res = await fetch(RPC_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([
      { jsonrpc: '2.0', id: 7, method: 'eth_chainId', params: [] },
      { jsonrpc: '2.0', id: 'b', method: 'eth_getBalance', params: [devAccount(0).address, 'latest'] },
    ]),
  });
  const body = await res.json();
  assert.ok(Array.isArray(body), 'batch response must be an array');
  const byId = new Map(body.map((r) => [r.id, r]));
  assert.equal(Number(byId.get(7).result), CHAIN_ID);
  assert.match(byId.get('b').result, /^0x[0-9a-f]+$/);
});

test('unknown methods fail with JSON-RPC error -32601', { timeout: TIMEOUT }, async () => {
  const res = await fetch(RPC_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_noSuchMethod', params: [] }),
  });
  const body = await res.json();
  assert.equal(body.id, 1);
  assert.equal(body.error?.code, -32601);
});
