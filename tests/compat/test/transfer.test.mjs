// Plain ETH transfers awaited to their receipts, via viem, ethers and `cast send`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEther } from 'viem';
import { cast } from '../lib/foundry.mjs';
import { ACCOUNT, RPC_URL, TIMEOUT, devAccount, ethersClients, feeOf, freshAccount, freshAddress, viemClients } from '../lib/env.mjs';

const AMOUNT = parseEther('0.0123');

test('viem: transfer to a fresh address, balances and nonce move exactly', { timeout: TIMEOUT }, async () => {
  const { account, publicClient, walletClient } = viemClients(ACCOUNT.transferViem);
  const to = freshAddress();
  const senderBefore = await publicClient.getBalance({ address: account.address });
  const nonceBefore = await publicClient.getTransactionCount({ address: account.address });

  const hash = await walletClient.sendTransaction({ to, value: AMOUNT });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });

  assert.equal(receipt.status, 'success');
  assert.equal(receipt.transactionHash, hash);
  assert.equal(receipt.from.toLowerCase(), account.address.toLowerCase());
  assert.equal(receipt.to.toLowerCase(), to.toLowerCase());
  assert.equal(receipt.gasUsed, 21000n);
  assert.equal(receipt.contractAddress, null);
  assert.deepEqual(receipt.logs, []);
  assert.equal(await publicClient.getBalance({ address: to }), AMOUNT);
  assert.equal(await publicClient.getBalance({ address: account.address }), senderBefore - AMOUNT - feeOf(receipt));
  assert.equal(await publicClient.getTransactionCount({ address: account.address }), nonceBefore + 1);
});

test('ethers: transfer to a fresh address, tx.wait() resolves to the receipt', { timeout: TIMEOUT }, async () => {
  const { provider, wallet } = ethersClients(ACCOUNT.transferEthers);
  try {
    const to = freshAddress();
    const senderBefore = await provider.getBalance(wallet.address);

    const tx = await wallet.sendTransaction({ to, value: AMOUNT });
    const receipt = await tx.wait(1, 60_000);

    assert.equal(receipt.status, 1);
    assert.equal(receipt.hash, tx.hash);
    assert.equal(receipt.gasUsed, 21000n);
    assert.equal(await provider.getBalance(to), AMOUNT);
    assert.equal(await provider.getBalance(wallet.address), senderBefore - AMOUNT - feeOf(receipt));
  } finally {
    provider.destroy();
  }
});

test('cast send --private-key: transfer to a fresh address', { timeout: TIMEOUT }, async () => {
  const sender = devAccount(ACCOUNT.transferCast);
  const to = freshAddress();
  const senderBefore = BigInt(await cast(['balance', sender.address, '--rpc-url', RPC_URL]));

  const out = await cast([
    'send', to, '--value', AMOUNT.toString(),
    '--private-key', sender.privateKey, '--rpc-url', RPC_URL, '--json', '--timeout', '60',
  ]);
  const receipt = JSON.parse(out);

  assert.equal(receipt.status, '0x1');
  assert.equal(BigInt(receipt.gasUsed), 21000n);
  assert.equal(receipt.to.toLowerCase(), to.toLowerCase());
  assert.equal(await cast(['balance', to, '--rpc-url', RPC_URL]), AMOUNT.toString());
  const senderAfter = BigInt(await cast(['balance', sender.address, '--rpc-url', RPC_URL]));
  assert.equal(senderAfter, senderBefore - AMOUNT - feeOf(receipt));
});

test('historical state: eth_getBalance at the block before and at the transfer block', { timeout: TIMEOUT }, async () => {
  const { publicClient, walletClient } = viemClients(ACCOUNT.transferViem);
  const to = freshAddress();
  const hash = await walletClient.sendTransaction({ to, value: AMOUNT });
  const { blockNumber, status } = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(status, 'success');

  assert.equal(await publicClient.getBalance({ address: to, blockNumber: blockNumber - 1n }), 0n);
  assert.equal(await publicClient.getBalance({ address: to, blockNumber }), AMOUNT);
  assert.equal(await cast(['balance', to, '--block', String(blockNumber - 1n), '--rpc-url', RPC_URL]), '0');
});

test('a transfer from an unfunded account is rejected as insufficient funds', { timeout: TIMEOUT }, async () => {
  const { walletClient } = viemClients(freshAccount());
  await assert.rejects(walletClient.sendTransaction({ to: freshAddress(), value: 1n, gas: 21000n }), (err) => {
    // viem classifies the node's message ("insufficient funds for gas * price + value").
    assert.ok(err.walk((e) => e.name === 'InsufficientFundsError'), err.message);
    return true;
  });
});
