// Transaction envelopes: EIP-1559 (type 2), legacy with EIP-155 (type 0), EIP-2930 (type 1);
// eth_getTransactionByHash fields, nonces ('latest' / 'pending') and nonce errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keccak256, parseGwei, serializeTransaction } from 'viem';
import { rpcRaw } from '../lib/foundry.mjs';
import { ACCOUNT, CHAIN_ID, RPC_URL, TIMEOUT, ethersClients, freshAddress, viemClients } from '../lib/env.mjs';

const { account, publicClient, walletClient } = viemClients(ACCOUNT.txTypes);
const VALUE = 12_345n;

async function latestBaseFee() {
  return (await publicClient.getBlock({ blockTag: 'latest' })).baseFeePerGas;
}

/** Sends with viem, waits, and returns { hash, receipt, tx } (tx from eth_getTransactionByHash). */
async function sendAndFetch(request) {
  const hash = await walletClient.sendTransaction(request);
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  const tx = await publicClient.getTransaction({ hash });
  return { hash, receipt, tx };
}

/** The node's transaction fields must re-serialize (with its signature) to the same hash. */
function assertHashMatchesFields(tx) {
  const signature = tx.type === 'legacy' ? { r: tx.r, s: tx.s, v: tx.v } : { r: tx.r, s: tx.s, yParity: tx.yParity };
  const fields = {
    type: tx.type, chainId: tx.chainId, nonce: tx.nonce, to: tx.to, value: tx.value, data: tx.input, gas: tx.gas,
    ...(tx.type === 'eip1559'
      ? { maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas }
      : { gasPrice: tx.gasPrice }),
    ...(tx.type !== 'legacy' ? { accessList: tx.accessList } : {}),
  };
  assert.equal(keccak256(serializeTransaction(fields, signature)), tx.hash, 'hash of re-serialized transaction');
}

function assertMinedFields(tx, receipt, to) {
  assert.equal(tx.hash, receipt.transactionHash);
  assert.equal(tx.from.toLowerCase(), account.address.toLowerCase());
  assert.equal(tx.to.toLowerCase(), to.toLowerCase());
  assert.equal(tx.value, VALUE);
  assert.equal(tx.input, '0x');
  assert.equal(tx.blockHash, receipt.blockHash);
  assert.equal(tx.blockNumber, receipt.blockNumber);
  assert.equal(tx.transactionIndex, receipt.transactionIndex);
  assert.equal(tx.chainId, CHAIN_ID);
}

test('EIP-1559 (type 2) transfer with explicit fees', { timeout: TIMEOUT }, async () => {
  const to = freshAddress();
  const maxPriorityFeePerGas = parseGwei('1.5');
  const maxFeePerGas = (await latestBaseFee()) * 2n + maxPriorityFeePerGas;
  const { receipt, tx } = await sendAndFetch({ type: 'eip1559', to, value: VALUE, maxFeePerGas, maxPriorityFeePerGas });

  assert.equal(receipt.status, 'success');
  assert.equal(receipt.type, 'eip1559');
  assert.equal(tx.type, 'eip1559');
  assert.equal(tx.maxFeePerGas, maxFeePerGas);
  assert.equal(tx.maxPriorityFeePerGas, maxPriorityFeePerGas);
  assert.ok(tx.yParity === 0 || tx.yParity === 1);
  assertMinedFields(tx, receipt, to);
  assertHashMatchesFields(tx);

  // effectiveGasPrice = min(maxFee, baseFee + tip) with the base fee of the including block.
  const { baseFeePerGas } = await publicClient.getBlock({ blockNumber: receipt.blockNumber });
  const expected = baseFeePerGas + maxPriorityFeePerGas < maxFeePerGas ? baseFeePerGas + maxPriorityFeePerGas : maxFeePerGas;
  assert.equal(receipt.effectiveGasPrice, expected);
});

test('legacy (type 0) transfer is EIP-155 protected', { timeout: TIMEOUT }, async () => {
  const to = freshAddress();
  const gasPrice = (await latestBaseFee()) * 2n + parseGwei('1');
  const { receipt, tx } = await sendAndFetch({ type: 'legacy', to, value: VALUE, gasPrice });

  assert.equal(receipt.status, 'success');
  assert.equal(receipt.type, 'legacy');
  assert.equal(receipt.effectiveGasPrice, gasPrice);
  assert.equal(tx.type, 'legacy');
  assert.equal(tx.gasPrice, gasPrice);
  // EIP-155: v = chainId * 2 + 35 + yParity
  const v = BigInt(tx.v);
  assert.ok(v === BigInt(CHAIN_ID) * 2n + 35n || v === BigInt(CHAIN_ID) * 2n + 36n, `v = ${v}`);
  assertMinedFields(tx, receipt, to);
  assertHashMatchesFields(tx);
});

test('EIP-2930 (type 1) transfer with an access list is charged for it', { timeout: TIMEOUT }, async () => {
  const to = freshAddress();
  const gasPrice = (await latestBaseFee()) * 2n + parseGwei('1');
  const accessList = [{ address: freshAddress(), storageKeys: [`0x${'00'.repeat(31)}07`] }];
  const { receipt, tx } = await sendAndFetch({ type: 'eip2930', to, value: VALUE, gasPrice, accessList });

  assert.equal(receipt.status, 'success');
  assert.equal(receipt.type, 'eip2930');
  // 21000 intrinsic + 2400 per listed address + 1900 per listed storage key.
  assert.equal(receipt.gasUsed, 21000n + 2400n + 1900n);
  assert.equal(tx.type, 'eip2930');
  assert.equal(tx.gasPrice, gasPrice);
  assert.deepEqual(
    tx.accessList.map((e) => ({ address: e.address.toLowerCase(), storageKeys: e.storageKeys })),
    accessList.map((e) => ({ address: e.address.toLowerCase(), storageKeys: e.storageKeys })),
  );
  assertMinedFields(tx, receipt, to);
  assertHashMatchesFields(tx);
});

test('ethers: legacy and EIP-2930 transactions', { timeout: TIMEOUT }, async () => {
  const { provider, wallet } = ethersClients(ACCOUNT.txTypes);
  try {
    const gasPrice = (await latestBaseFee()) * 2n + parseGwei('1');
    const legacy = await (await wallet.sendTransaction({ type: 0, to: freshAddress(), value: VALUE, gasPrice })).wait(1, 60_000);
    assert.equal(legacy.status, 1);
    assert.equal(legacy.type, 0);
    assert.equal(legacy.gasPrice, gasPrice);

    const accessList = [{ address: freshAddress(), storageKeys: [] }];
    const typed = await (await wallet.sendTransaction({ type: 1, to: freshAddress(), value: VALUE, gasPrice, accessList })).wait(1, 60_000);
    assert.equal(typed.status, 1);
    assert.equal(typed.type, 1);
    assert.equal(typed.gasUsed, 21000n + 2400n);
    const fetched = await provider.getTransaction(typed.hash);
    assert.equal(fetched.type, 1);
    assert.equal(fetched.accessList.length, 1);
  } finally {
    provider.destroy();
  }
});

test("nonce: 'latest' and 'pending' counts advance by one per mined transaction", { timeout: TIMEOUT }, async () => {
  const { address } = account;
  const latest = await publicClient.getTransactionCount({ address, blockTag: 'latest' });
  const pending = await publicClient.getTransactionCount({ address, blockTag: 'pending' });
  assert.equal(pending, latest, 'automine leaves nothing pending');

  const { receipt, tx } = await sendAndFetch({ to: freshAddress(), value: VALUE });
  assert.equal(receipt.status, 'success');
  assert.equal(tx.nonce, latest);
  assert.equal(await publicClient.getTransactionCount({ address, blockTag: 'latest' }), latest + 1);
  assert.equal(await publicClient.getTransactionCount({ address, blockTag: 'pending' }), latest + 1);

  const { provider } = ethersClients(ACCOUNT.txTypes);
  try {
    assert.equal(await provider.getTransactionCount(address, 'pending'), latest + 1);
  } finally {
    provider.destroy();
  }
});

test('a transaction reusing a mined nonce is rejected as nonce too low', { timeout: TIMEOUT }, async () => {
  const { tx } = await sendAndFetch({ to: freshAddress(), value: VALUE });
  await assert.rejects(
    walletClient.sendTransaction({ to: freshAddress(), value: VALUE, nonce: tx.nonce, gas: 21000n }),
    (err) => {
      // viem classifies the node's message ("nonce too low").
      assert.ok(err.walk((e) => e.name === 'NonceTooLowError'), err.message);
      return true;
    },
  );
});

test('unknown transaction hash: getTransactionByHash and getTransactionReceipt return null', { timeout: TIMEOUT }, async () => {
  const unknown = keccak256(`0x${Date.now().toString(16).padStart(16, '0')}`);
  assert.equal((await rpcRaw(RPC_URL, 'eth_getTransactionByHash', [unknown])).result, null);
  assert.equal((await rpcRaw(RPC_URL, 'eth_getTransactionReceipt', [unknown])).result, null);
});
