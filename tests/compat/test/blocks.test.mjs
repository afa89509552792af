// Blocks (by number, by hash, by tag, with full transactions) and fee market endpoints:
// eth_feeHistory, eth_maxPriorityFeePerGas, eth_gasPrice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toHex } from 'viem';
import { cast, rpcRaw } from '../lib/foundry.mjs';
import { ACCOUNT, RPC_URL, TIMEOUT, ethersClients, freshAddress, viemClients } from '../lib/env.mjs';

const { account, publicClient, walletClient } = viemClients(ACCOUNT.blocks);
const ZERO_HASH = `0x${'00'.repeat(32)}`;

async function minedTransfer() {
  const hash = await walletClient.sendTransaction({ to: freshAddress(), value: 1n });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.status, 'success');
  return receipt;
}

test('eth_getBlockByNumber / eth_getBlockByHash, with full transactions and with hashes', { timeout: TIMEOUT }, async () => {
  const receipt = await minedTransfer();
  const byNumber = await publicClient.getBlock({ blockNumber: receipt.blockNumber, includeTransactions: true });
  const byHash = await publicClient.getBlock({ blockHash: receipt.blockHash, includeTransactions: true });
  const hashesOnly = await publicClient.getBlock({ blockHash: receipt.blockHash });

  assert.equal(byNumber.hash, receipt.blockHash);
  assert.equal(byNumber.number, receipt.blockNumber);
  assert.deepEqual(byHash, byNumber);

  const tx = byNumber.transactions[receipt.transactionIndex];
  assert.equal(typeof tx, 'object', 'full transaction objects');
  assert.equal(tx.hash, receipt.transactionHash);
  assert.equal(tx.from.toLowerCase(), account.address.toLowerCase());
  assert.equal(tx.blockHash, receipt.blockHash);
  assert.equal(tx.blockNumber, receipt.blockNumber);
  assert.deepEqual(hashesOnly.transactions, byNumber.transactions.map((t) => t.hash));

  // Header consistency.
  assert.ok(byNumber.gasUsed >= receipt.gasUsed);
  assert.ok(byNumber.gasLimit >= byNumber.gasUsed);
  assert.equal(typeof byNumber.baseFeePerGas, 'bigint', 'London header has baseFeePerGas');
  for (const field of ['parentHash', 'stateRoot', 'transactionsRoot', 'receiptsRoot', 'logsBloom', 'miner', 'timestamp']) {
    assert.ok(byNumber[field] !== undefined && byNumber[field] !== null, `block lacks ${field}`);
  }
  const parent = await publicClient.getBlock({ blockNumber: receipt.blockNumber - 1n });
  assert.equal(byNumber.parentHash, parent.hash);
  assert.ok(byNumber.timestamp >= parent.timestamp);
  assert.equal(await publicClient.getBlockTransactionCount({ blockHash: receipt.blockHash }), byNumber.transactions.length);
});

test('ethers getBlock with prefetched transactions; cast block agrees', { timeout: TIMEOUT }, async () => {
  const receipt = await minedTransfer();
  const { provider } = ethersClients(ACCOUNT.blocks);
  try {
    const block = await provider.getBlock(Number(receipt.blockNumber), true);
    assert.equal(block.hash, receipt.blockHash);
    assert.equal(block.prefetchedTransactions.find((t) => t.hash === receipt.transactionHash)?.blockNumber, Number(receipt.blockNumber));
    const byHash = await provider.getBlock(receipt.blockHash);
    assert.equal(byHash.number, Number(receipt.blockNumber));
  } finally {
    provider.destroy();
  }

  const viaCast = JSON.parse(await cast(['block', String(receipt.blockNumber), '--json', '--rpc-url', RPC_URL]));
  assert.equal(viaCast.hash, receipt.blockHash);
});

test("block tags: 'earliest', 'latest', 'pending'; unknown blocks are null", { timeout: TIMEOUT }, async () => {
  const genesis = await publicClient.getBlock({ blockTag: 'earliest' });
  assert.equal(genesis.number, 0n);
  assert.equal(genesis.parentHash, ZERO_HASH);
  assert.deepEqual(await publicClient.getBlock({ blockNumber: 0n }), genesis);

  const latest = await publicClient.getBlock({ blockTag: 'latest' });
  const pending = await publicClient.getBlock({ blockTag: 'pending' });
  assert.ok(pending.number >= latest.number, `pending ${pending.number} < latest ${latest.number}`);

  const future = toHex(latest.number + 1_000_000n);
  assert.equal((await rpcRaw(RPC_URL, 'eth_getBlockByNumber', [future, false])).result, null);
  assert.equal((await rpcRaw(RPC_URL, 'eth_getBlockByHash', [`0x${'ab'.repeat(32)}`, false])).result, null);
});

test('eth_feeHistory: shape and consistency with block base fees', { timeout: TIMEOUT }, async () => {
  // Make sure at least four blocks exist.
  for (let i = 0; i < 4; i++) await minedTransfer();
  const percentiles = [10, 50, 90];
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  const history = await publicClient.getFeeHistory({ blockCount: 4, blockNumber: head, rewardPercentiles: percentiles });

  assert.equal(history.oldestBlock, head - 3n);
  assert.equal(history.baseFeePerGas.length, 5, 'blockCount + 1 base fees (the last one is the next block)');
  assert.equal(history.gasUsedRatio.length, 4);
  assert.equal(history.reward.length, 4);
  for (const ratio of history.gasUsedRatio) assert.ok(ratio >= 0 && ratio <= 1, `gasUsedRatio ${ratio}`);
  for (const rewards of history.reward) {
    assert.equal(rewards.length, percentiles.length);
    assert.ok(rewards[0] <= rewards[1] && rewards[1] <= rewards[2], 'rewards ascend with percentiles');
  }
  for (let i = 0; i < 4; i++) {
    const block = await publicClient.getBlock({ blockNumber: history.oldestBlock + BigInt(i) });
    assert.equal(history.baseFeePerGas[i], block.baseFeePerGas, `base fee of block ${block.number}`);
    const ratio = Number(block.gasUsed) / Number(block.gasLimit);
    assert.ok(Math.abs(history.gasUsedRatio[i] - ratio) < 1e-9, `gasUsedRatio of block ${block.number}`);
  }

  const viaLatestTag = await publicClient.request({ method: 'eth_feeHistory', params: ['0x2', 'latest', []] });
  assert.equal(viaLatestTag.baseFeePerGas.length, 3);
});

test('eth_maxPriorityFeePerGas, eth_gasPrice and client fee estimation', { timeout: TIMEOUT }, async () => {
  const tip = await publicClient.request({ method: 'eth_maxPriorityFeePerGas' });
  assert.match(tip, /^0x[0-9a-f]+$/);

  const { baseFeePerGas } = await publicClient.getBlock({ blockTag: 'latest' });
  const gasPrice = await publicClient.getGasPrice();
  assert.ok(gasPrice >= baseFeePerGas, `gasPrice ${gasPrice} < baseFee ${baseFeePerGas}`);

  const fees = await publicClient.estimateFeesPerGas();
  assert.ok(fees.maxFeePerGas >= baseFeePerGas);
  assert.ok(fees.maxFeePerGas >= fees.maxPriorityFeePerGas);

  const { provider } = ethersClients(ACCOUNT.blocks);
  try {
    // Values may move between calls if other files mine blocks, so check relations only.
    const data = await provider.getFeeData();
    assert.equal(typeof data.gasPrice, 'bigint');
    assert.equal(typeof data.maxPriorityFeePerGas, 'bigint', 'ethers needs eth_maxPriorityFeePerGas');
    assert.ok(data.maxFeePerGas >= data.maxPriorityFeePerGas);
    assert.ok(data.maxFeePerGas >= baseFeePerGas);
  } finally {
    provider.destroy();
  }
});
