// A Solidity contract compiled with solc-js at test time, deployed, called and transacted;
// eth_estimateGas; revert reasons and custom errors surfaced to viem, ethers and cast.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContractFactory, Contract } from 'ethers';
import {
  ContractFunctionRevertedError,
  getContractAddress,
  pad,
  parseEventLogs,
  toHex,
} from 'viem';
import { compat, deployCompat } from '../lib/compat-contract.mjs';
import { cast } from '../lib/foundry.mjs';
import { ACCOUNT, RPC_URL, TIMEOUT, devAccount, ethersClients, freshAddress, viemClients } from '../lib/env.mjs';

const clients = viemClients(ACCOUNT.contract);
const { account, publicClient, walletClient } = clients;
const REASON = 'Compat: value must be non-zero';

// One shared deployment, created lazily so every test also runs on its own.
let shared;
function sharedCompat() {
  shared ??= deployCompat(clients, { initial: 1n });
  return shared;
}

/** The ContractFunctionRevertedError inside a viem error, or fails the test. */
function revertedError(err) {
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  assert.ok(reverted, `expected a decoded revert, got: ${err.message}`);
  return reverted;
}

async function write(functionName, args, extra = {}) {
  const { address, abi } = await sharedCompat();
  const hash = await walletClient.writeContract({ address, abi, functionName, args, ...extra });
  return publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
}

test('solc-js compiles the contract', () => {
  const { abi, bytecode, deployedBytecode } = compat();
  const names = abi.filter((e) => e.type === 'function').map((e) => e.name);
  for (const fn of ['store', 'setCell', 'note', 'onlyOwner', 'stored', 'cells', 'owner']) assert.ok(names.includes(fn), fn);
  assert.ok(abi.some((e) => e.type === 'error' && e.name === 'Unauthorized'));
  assert.ok(bytecode.length > deployedBytecode.length);
});

test('viem: deploy with constructor argument and value', { timeout: TIMEOUT }, async () => {
  const nonce = await publicClient.getTransactionCount({ address: account.address });
  const { address, receipt } = await deployCompat(clients, { initial: 42n, value: 1000n });

  assert.equal(receipt.to, null);
  assert.equal(address.toLowerCase(), getContractAddress({ from: account.address, nonce: BigInt(nonce) }).toLowerCase());
  assert.equal(await publicClient.getCode({ address }), compat().deployedBytecode);
  assert.equal(await publicClient.getBalance({ address }), 1000n);
  assert.equal(await publicClient.getStorageAt({ address, slot: toHex(0) }), pad(toHex(42)));
  assert.equal(
    (await publicClient.getStorageAt({ address, slot: toHex(1) })).toLowerCase(),
    pad(account.address).toLowerCase(),
  );
  assert.equal(await publicClient.getTransactionCount({ address }), 1, 'contract nonce starts at 1 (EIP-161)');
});

test('eth_call: read public state', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await deployCompat(clients, { initial: 7n });
  assert.equal(await publicClient.readContract({ address, abi, functionName: 'stored' }), 7n);
  assert.equal(
    (await publicClient.readContract({ address, abi, functionName: 'owner' })).toLowerCase(),
    account.address.toLowerCase(),
  );
  assert.equal(await publicClient.readContract({ address, abi, functionName: 'cells', args: [5n] }), 0n);
  assert.equal(await publicClient.readContract({ address, abi, functionName: 'onlyOwner', args: [1n], account }), true);
});

test('transaction: store() writes storage and emits Stored', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const receipt = await write('store', [777n]);

  assert.equal(receipt.status, 'success');
  const [event] = parseEventLogs({ abi, logs: receipt.logs, eventName: 'Stored' });
  assert.equal(event.address.toLowerCase(), address.toLowerCase());
  assert.equal(event.args.writer.toLowerCase(), account.address.toLowerCase());
  assert.equal(event.args.key, 0n);
  assert.equal(event.args.value, 777n);
  assert.equal(await publicClient.readContract({ address, abi, functionName: 'stored' }), 777n);
  assert.equal(await publicClient.getStorageAt({ address, slot: toHex(0) }), pad(toHex(777)));
});

test('eth_estimateGas: exact for a transfer, sufficient for a contract call', { timeout: TIMEOUT }, async () => {
  assert.equal(await publicClient.estimateGas({ account, to: freshAddress(), value: 1n }), 21000n);

  const { address, abi } = await sharedCompat();
  const estimate = await publicClient.estimateContractGas({ address, abi, functionName: 'setCell', args: [11n, 5n], account });
  assert.ok(estimate > 21000n);
  const receipt = await write('setCell', [11n, 5n], { gas: estimate });
  assert.equal(receipt.status, 'success');
  assert.ok(receipt.gasUsed <= estimate, `gasUsed ${receipt.gasUsed} > estimate ${estimate}`);
});

test('viem: revert reason surfaced by eth_call and eth_estimateGas', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const request = { address, abi, functionName: 'setCell', args: [1n, 0n], account };

  await assert.rejects(publicClient.simulateContract(request), (err) => {
    assert.equal(revertedError(err).reason, REASON);
    return true;
  });
  await assert.rejects(publicClient.estimateContractGas(request), (err) => {
    assert.equal(revertedError(err).reason, REASON);
    return true;
  });
});

test('ethers: revert reason surfaced by eth_call and eth_estimateGas', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const { provider, wallet } = ethersClients(ACCOUNT.contract);
  try {
    const contract = new Contract(address, abi, wallet);
    for (const attempt of [() => contract.setCell.staticCall(1n, 0n), () => contract.setCell.estimateGas(1n, 0n)]) {
      await assert.rejects(attempt(), (err) => {
        assert.equal(err.code, 'CALL_EXCEPTION', err.message);
        assert.equal(err.reason, REASON);
        assert.equal(err.revert?.name, 'Error');
        return true;
      });
    }
  } finally {
    provider.destroy();
  }
});

test('cast call: revert reason surfaced', { timeout: TIMEOUT }, async () => {
  const { address } = await sharedCompat();
  await assert.rejects(
    cast(['call', address, 'setCell(uint256,uint256)', '1', '0', '--rpc-url', RPC_URL]),
    (err) => {
      assert.match(err.stderr, new RegExp(REASON));
      return true;
    },
  );
});

test('custom error decoded from eth_call (viem and ethers)', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const stranger = devAccount(ACCOUNT.spare).address;

  await assert.rejects(
    publicClient.readContract({ address, abi, functionName: 'onlyOwner', args: [99n], account: stranger }),
    (err) => {
      const reverted = revertedError(err);
      assert.equal(reverted.data?.errorName, 'Unauthorized');
      assert.equal(reverted.data.args[0].toLowerCase(), stranger.toLowerCase());
      assert.equal(reverted.data.args[1], 99n);
      return true;
    },
  );

  const { provider } = ethersClients(ACCOUNT.contract);
  try {
    const contract = new Contract(address, abi, provider);
    await assert.rejects(contract.onlyOwner.staticCall(99n, { from: stranger }), (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', err.message);
      assert.equal(err.revert?.name, 'Unauthorized');
      assert.equal(err.revert.args[0].toLowerCase(), stranger.toLowerCase());
      assert.equal(err.revert.args[1], 99n);
      return true;
    });
  } finally {
    provider.destroy();
  }
});

test('mined failing transaction: status reverted, no effects, reason recovered by replay', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const nonceBefore = await publicClient.getTransactionCount({ address: account.address });
  // An explicit gas limit skips estimation, so the failing call is mined.
  const receipt = await write('setCell', [3n, 0n], { gas: 200_000n });

  assert.equal(receipt.status, 'reverted');
  assert.deepEqual(receipt.logs, []);
  assert.ok(receipt.gasUsed > 21000n && receipt.gasUsed < 200_000n, `gasUsed ${receipt.gasUsed}`);
  assert.equal(await publicClient.getTransactionCount({ address: account.address }), nonceBefore + 1);
  assert.equal(await publicClient.readContract({ address, abi, functionName: 'cells', args: [3n] }), 0n);

  // Replaying the call on the parent block's state yields the reason.
  await assert.rejects(
    publicClient.simulateContract({
      address, abi, functionName: 'setCell', args: [3n, 0n], account, blockNumber: receipt.blockNumber - 1n,
    }),
    (err) => {
      assert.equal(revertedError(err).reason, REASON);
      return true;
    },
  );
});

test('ethers: a mined failing transaction makes tx.wait() throw CALL_EXCEPTION', { timeout: TIMEOUT }, async () => {
  const { address, abi } = await sharedCompat();
  const { provider, wallet } = ethersClients(ACCOUNT.contract);
  try {
    const contract = new Contract(address, abi, wallet);
    const tx = await contract.setCell(4n, 0n, { gasLimit: 200_000n });
    await assert.rejects(tx.wait(1, 60_000), (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', err.message);
      assert.equal(err.receipt?.status, 0);
      return true;
    });
  } finally {
    provider.destroy();
  }
});

test('ethers: ContractFactory deploy, call and transact', { timeout: TIMEOUT }, async () => {
  const { abi, bytecode } = compat();
  const { provider, wallet } = ethersClients(ACCOUNT.contract);
  try {
    const contract = await new ContractFactory(abi, bytecode, wallet).deploy(5n);
    await contract.waitForDeployment();
    assert.equal(await contract.stored(), 5n);

    const receipt = await (await contract.setCell(8n, 88n)).wait(1, 60_000);
    assert.equal(receipt.status, 1);
    const [log] = receipt.logs.map((l) => contract.interface.parseLog(l));
    assert.equal(log.name, 'Stored');
    assert.equal(log.args.value, 88n);
    assert.equal(await contract.cells(8n), 88n);
  } finally {
    provider.destroy();
  }
});

test('cast send and cast call against the contract', { timeout: TIMEOUT }, async () => {
  const { address } = await sharedCompat();
  const receipt = JSON.parse(await cast([
    'send', address, 'store(uint256)', '31337',
    '--private-key', account.privateKey, '--rpc-url', RPC_URL, '--json', '--timeout', '60',
  ]));
  assert.equal(receipt.status, '0x1');
  assert.equal(receipt.logs.length, 1);
  const out = await cast(['call', address, 'stored()(uint256)', '--rpc-url', RPC_URL]);
  assert.equal(out.split(' ')[0], '31337'); // cast may append a scientific form: "31337 [3.133e4]"
});
