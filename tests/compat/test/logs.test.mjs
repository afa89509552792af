// Event logs over HTTP: eth_getLogs with address/topic/blockHash filters, and the
// filter API (eth_newFilter, eth_newBlockFilter, eth_getFilterChanges, eth_getFilterLogs,
// eth_uninstallFilter), including viem's polling watchContractEvent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Contract } from 'ethers';
import { decodeAbiParameters, encodeEventTopics, pad, stringToHex, toHex } from 'viem';
import { deployCompat } from '../lib/compat-contract.mjs';
import { ACCOUNT, TIMEOUT, emitUntilReceived, ethersClients, freshAddress, viemClients } from '../lib/env.mjs';

const clients = viemClients(ACCOUNT.logs);
const { account, publicClient, walletClient } = clients;
const TAG = stringToHex('compat-tag', { size: 32 });

async function write(contract, functionName, args) {
  const hash = await walletClient.writeContract({ ...contract, functionName, args });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.status, 'success', `${functionName} failed`);
  return receipt;
}

// A contract with a known set of logs: Stored(1,10), Stored(2,20), Note(TAG,"hello"), Stored(0,5).
let emitted;
function contractWithLogs() {
  emitted ??= (async () => {
    const { address, abi } = await deployCompat(clients);
    const contract = { address, abi };
    const receipts = [
      await write(contract, 'setCell', [1n, 10n]),
      await write(contract, 'setCell', [2n, 20n]),
      await write(contract, 'note', [TAG, 'hello']),
      await write(contract, 'store', [5n]),
    ];
    return { contract, receipts, fromBlock: receipts[0].blockNumber, toBlock: receipts[3].blockNumber };
  })();
  return emitted;
}

const storedTopic = (abi) => encodeEventTopics({ abi, eventName: 'Stored' })[0];
const noteTopic = (abi) => encodeEventTopics({ abi, eventName: 'Note' })[0];

test('eth_getLogs: by address and block range, with complete log fields', { timeout: TIMEOUT }, async () => {
  const { contract, receipts, fromBlock, toBlock } = await contractWithLogs();
  const logs = await publicClient.getLogs({ address: contract.address, fromBlock, toBlock });

  assert.equal(logs.length, 4);
  logs.forEach((log, i) => {
    const receipt = receipts[i];
    assert.equal(log.address.toLowerCase(), contract.address.toLowerCase());
    assert.equal(log.transactionHash, receipt.transactionHash);
    assert.equal(log.blockHash, receipt.blockHash);
    assert.equal(log.blockNumber, receipt.blockNumber);
    assert.equal(log.transactionIndex, receipt.transactionIndex);
    assert.equal(log.logIndex, receipt.logs[0].logIndex);
    assert.equal(log.removed, false);
    assert.deepEqual(log.topics, receipt.logs[0].topics);
    assert.equal(log.data, receipt.logs[0].data);
  });
  const [text] = decodeAbiParameters([{ type: 'string' }], logs[2].data);
  assert.equal(text, 'hello');
  assert.deepEqual(logs[2].topics, [noteTopic(contract.abi), TAG]);
});

test('eth_getLogs: topic filters (exact, wildcard, OR) and blockHash', { timeout: TIMEOUT }, async () => {
  const { contract, receipts, fromBlock, toBlock } = await contractWithLogs();
  const { address, abi } = contract;
  const range = { fromBlock: toHex(fromBlock), toBlock: toHex(toBlock) };
  const getLogs = (filter) => publicClient.request({ method: 'eth_getLogs', params: [{ address, ...range, ...filter }] });

  assert.equal((await getLogs({ topics: [storedTopic(abi)] })).length, 3);
  assert.equal((await getLogs({ topics: [[storedTopic(abi), noteTopic(abi)]] })).length, 4);
  const keyed = await getLogs({ topics: [storedTopic(abi), null, [pad(toHex(1)), pad(toHex(2))]] });
  assert.deepEqual(keyed.map((l) => BigInt(l.data)), [10n, 20n]);
  assert.equal((await getLogs({ topics: [null, pad(account.address.toLowerCase())] })).length, 3);

  // viem's typed form: event + indexed argument.
  const byArg = await publicClient.getLogs({
    address, event: abi.find((e) => e.name === 'Stored'), args: { key: 2n }, fromBlock, toBlock,
  });
  assert.equal(byArg.length, 1);
  assert.equal(byArg[0].args.value, 20n);

  const byHash = await publicClient.request({ method: 'eth_getLogs', params: [{ blockHash: receipts[2].blockHash, address }] });
  assert.equal(byHash.length, 1);
  assert.equal(byHash[0].topics[0], noteTopic(abi));

  const elsewhere = await publicClient.getLogs({ address: freshAddress(), fromBlock, toBlock });
  assert.deepEqual(elsewhere, []);
});

test('ethers: getLogs and queryFilter', { timeout: TIMEOUT }, async () => {
  const { contract, fromBlock, toBlock } = await contractWithLogs();
  const { provider } = ethersClients(ACCOUNT.logs);
  try {
    const logs = await provider.getLogs({ address: contract.address, fromBlock, toBlock });
    assert.equal(logs.length, 4);

    const c = new Contract(contract.address, contract.abi, provider);
    const events = await c.queryFilter(c.filters.Stored(null, 2n), fromBlock, toBlock);
    assert.equal(events.length, 1);
    assert.equal(events[0].args.value, 20n);
  } finally {
    provider.destroy();
  }
});

test('eth_newFilter / eth_getFilterChanges / eth_getFilterLogs / eth_uninstallFilter', { timeout: TIMEOUT }, async () => {
  const { address, abi, receipt: deployReceipt } = await deployCompat(clients);
  const contract = { address, abi };
  const filter = await publicClient.createContractEventFilter({
    address, abi, eventName: 'Stored', fromBlock: deployReceipt.blockNumber,
  });

  await write(contract, 'setCell', [3n, 30n]);
  const first = await publicClient.getFilterChanges({ filter });
  assert.deepEqual(first.map((l) => l.args.value), [30n]);
  assert.deepEqual(await publicClient.getFilterChanges({ filter }), [], 'changes are consumed');

  await write(contract, 'note', [TAG, 'not a Stored event']);
  await write(contract, 'setCell', [4n, 40n]);
  const second = await publicClient.getFilterChanges({ filter });
  assert.deepEqual(second.map((l) => l.args.value), [40n]);

  const all = await publicClient.getFilterLogs({ filter });
  assert.deepEqual(all.map((l) => l.args.value), [30n, 40n]);

  assert.equal(await publicClient.uninstallFilter({ filter }), true);
  await assert.rejects(publicClient.getFilterChanges({ filter }), 'changes of an uninstalled filter');
  assert.equal(await publicClient.uninstallFilter({ filter }), false);
});

test('eth_newBlockFilter reports the hashes of new blocks', { timeout: TIMEOUT }, async () => {
  const filter = await publicClient.createBlockFilter();
  const hash = await walletClient.sendTransaction({ to: freshAddress(), value: 1n });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });

  const hashes = await publicClient.getFilterChanges({ filter });
  assert.ok(hashes.includes(receipt.blockHash), `${receipt.blockHash} not in ${JSON.stringify(hashes)}`);
  assert.equal(await publicClient.uninstallFilter({ filter }), true);
});

test('viem watchContractEvent over HTTP (filter polling) delivers a new event', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await deployCompat(clients);
  let unwatch;
  const received = new Promise((resolve, reject) => {
    unwatch = publicClient.watchContractEvent({
      address, abi, eventName: 'Stored', poll: true, pollingInterval: 200,
      onLogs: (logs) => resolve(logs), onError: reject,
    });
  });
  try {
    const { value: logs, sent } = await emitUntilReceived(received, (i) => write({ address, abi }, 'setCell', [9n, 100n + BigInt(i)]));
    assert.equal(logs.length, 1);
    const index = sent.findIndex((r) => r.transactionHash === logs[0].transactionHash);
    assert.ok(index >= 0, 'the event comes from one of our transactions');
    assert.equal(logs[0].args.value, 100n + BigInt(index));
  } finally {
    unwatch();
  }
});
