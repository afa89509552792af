// WebSocket transport: plain requests, eth_subscribe('newHeads' / 'logs'), eth_unsubscribe,
// via a raw socket, viem's webSocket transport and ethers' WebSocketProvider.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Contract } from 'ethers';
import WebSocket from 'ws';
import { deployCompat } from '../lib/compat-contract.mjs';
import {
  ACCOUNT,
  CHAIN_ID,
  TIMEOUT,
  WS_URL,
  closeEthersWs,
  closeViemWs,
  emitUntilReceived,
  ethersWsProvider,
  freshAddress,
  viemClients,
  viemWsClient,
  withTimeout,
} from '../lib/env.mjs';

const clients = viemClients(ACCOUNT.ws);
const { publicClient, walletClient } = clients;
const wsClient = viemWsClient();
after(() => closeViemWs(wsClient));

async function sendTransfer() {
  const hash = await walletClient.sendTransaction({ to: freshAddress(), value: 1n });
  return publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
}

async function setCell(contract, key, value) {
  const hash = await walletClient.writeContract({ ...contract, functionName: 'setCell', args: [key, value] });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.status, 'success');
  return receipt;
}

/** Minimal JSON-RPC over a raw socket: request() plus a stream of subscription notifications. */
async function rawSocket() {
  const socket = new WebSocket(WS_URL);
  await withTimeout(new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); }), 10_000, 'socket open');
  const pending = new Map();
  const notifications = [];
  const waiters = [];
  let nextId = 1;
  socket.on('message', (raw) => {
    const msg = JSON.parse(raw.toString());
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    } else if (msg.method === 'eth_subscription') {
      notifications.push(msg);
      waiters.splice(0).forEach((wake) => wake());
    }
  });
  return {
    request(method, params = []) {
      const id = nextId++;
      socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      return withTimeout(new Promise((resolve) => pending.set(id, resolve)), 10_000, method);
    },
    /** Waits until a notification satisfies `predicate`, returns it. */
    async notification(predicate, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = notifications.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error('timed out waiting for a subscription notification');
        await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 500); });
      }
    },
    close: () => socket.close(),
  };
}

test('viem over WebSocket: plain requests', { timeout: TIMEOUT }, async () => {
  assert.equal(await wsClient.getChainId(), CHAIN_ID);
  const overWs = await wsClient.getBlockNumber({ cacheTime: 0 });
  const overHttp = await publicClient.getBlockNumber({ cacheTime: 0 });
  assert.ok(overHttp >= overWs);
});

test("raw socket: eth_subscribe('newHeads') notifications and eth_unsubscribe", { timeout: TIMEOUT }, async () => {
  const socket = await rawSocket();
  try {
    const sub = await socket.request('eth_subscribe', ['newHeads']);
    assert.equal(sub.error, undefined, JSON.stringify(sub.error));
    assert.match(sub.result, /^0x[0-9a-f]+$/i, 'subscription id is a hex string');

    const receipt = await sendTransfer();
    const note = await socket.notification((n) => n.params.result.hash === receipt.blockHash);
    assert.equal(note.jsonrpc, '2.0');
    assert.equal(note.params.subscription, sub.result);
    const head = note.params.result;
    assert.equal(BigInt(head.number), receipt.blockNumber);
    for (const field of ['parentHash', 'stateRoot', 'transactionsRoot', 'receiptsRoot', 'miner', 'gasLimit', 'gasUsed', 'timestamp', 'baseFeePerGas', 'logsBloom']) {
      assert.ok(head[field] !== undefined, `newHeads result lacks ${field}`);
    }

    assert.equal((await socket.request('eth_unsubscribe', [sub.result])).result, true);
    // A second unsubscribe finds nothing: false (anvil) or an error (geth), never true.
    const again = await socket.request('eth_unsubscribe', [sub.result]);
    assert.ok(again.error !== undefined || again.result === false, `second unsubscribe: ${JSON.stringify(again)}`);
  } finally {
    socket.close();
  }
});

test('viem watchBlocks over WebSocket (newHeads)', { timeout: TIMEOUT }, async () => {
  const seen = [];
  let unwatch;
  const received = new Promise((resolve, reject) => {
    unwatch = wsClient.watchBlocks({
      onBlock: (block) => { seen.push(block.hash); if (seen.length >= 1) resolve(block); },
      onError: reject,
    });
  });
  try {
    const { value: block } = await emitUntilReceived(received, () => sendTransfer());
    assert.equal(typeof block.number, 'bigint');
    assert.match(block.hash, /^0x[0-9a-f]{64}$/);
  } finally {
    unwatch();
  }
});

test('viem watchContractEvent over WebSocket (eth_subscribe logs)', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await deployCompat(clients);
  let unwatch;
  const received = new Promise((resolve, reject) => {
    unwatch = wsClient.watchContractEvent({
      address, abi, eventName: 'Stored', args: { key: 7n },
      onLogs: (logs) => resolve(logs), onError: reject,
    });
  });
  try {
    const { value: logs, sent } = await emitUntilReceived(received, async (i) => {
      await setCell({ address, abi }, 6n, 1n); // filtered out by the indexed-argument topic
      return setCell({ address, abi }, 7n, 70n + BigInt(i));
    });
    const index = sent.findIndex((r) => r.transactionHash === logs[0].transactionHash);
    assert.ok(index >= 0, 'the event comes from one of our matching transactions');
    assert.equal(logs[0].address.toLowerCase(), address.toLowerCase());
    assert.equal(logs[0].args.key, 7n);
    assert.equal(logs[0].args.value, 70n + BigInt(index));
    assert.equal(logs[0].blockHash, sent[index].blockHash);
  } finally {
    unwatch();
  }
});

test('ethers WebSocketProvider: contract events and new blocks', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await deployCompat(clients);
  const provider = ethersWsProvider();
  try {
    assert.equal((await provider.getNetwork()).chainId, BigInt(CHAIN_ID));
    const contract = new Contract(address, abi, provider);

    const event = new Promise((resolve) => {
      contract.on('Stored', (writer, key, value, payload) => resolve({ key, value, log: payload.log }));
    });
    const { value: got, sent } = await emitUntilReceived(event, (i) => setCell({ address, abi }, 5n, 50n + BigInt(i)));
    const index = sent.findIndex((r) => r.transactionHash === got.log.transactionHash);
    assert.ok(index >= 0, 'the event comes from one of our transactions');
    assert.equal(got.key, 5n);
    assert.equal(got.value, 50n + BigInt(index));

    const block = new Promise((resolve) => provider.once('block', resolve));
    const { value: blockNumber } = await emitUntilReceived(block, () => sendTransfer());
    assert.equal(typeof blockNumber, 'number');
  } finally {
    await closeEthersWs(provider);
  }
});
