// The subnets native module (Bittensor-compatible precompiles 0x…0802-0x…0805 plus the
// Noesis extensions) driven through viem with the ABI files generated into abi/subnets/:
// a subnet is created, its owner sets a short tempo, a validator and miners register with
// burnedRegister, stake goes to the validator, the validator commits then reveals weights,
// blocks are mined past an epoch, and the weighted miner's emission is read back.
//
// Emission is read from the metagraph getters and from the epoch's events. The epoch runs
// as an end-of-block system call, so its events (NeuronEmission, EpochEmission) are in no
// transaction's receipt: eth_getLogs serves them under a synthetic transaction hash.
//
// Needs a Noesis node: skipped where the module's addresses hold no code (e.g. anvil).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  BaseError,
  ContractFunctionRevertedError,
  encodeAbiParameters,
  keccak256,
  pad,
  parseAbiParameters,
  parseEther,
  parseEventLogs,
  stringToHex,
} from 'viem';
import { compileSources } from '../lib/solc.mjs';
import { ACCOUNT, TIMEOUT, freshAccount, viemClients } from '../lib/env.mjs';

const ABI_DIR = new URL('../../../abi/subnets/', import.meta.url);
const readAbi = (name) => JSON.parse(readFileSync(new URL(`${name}.json`, ABI_DIR), 'utf8'));
const ABI = {
  metagraph: readAbi('IMetagraph'),
  subnet: readAbi('ISubnet'),
  neuron: readAbi('INeuron'),
  staking: readAbi('IStaking'),
  noesis: readAbi('INoesisSubnets'),
  events: readAbi('SubnetsEvents'),
};

const METAGRAPH = '0x0000000000000000000000000000000000000802';
const SUBNET = '0x0000000000000000000000000000000000000803';
const NEURON = '0x0000000000000000000000000000000000000804';
const STAKING = '0x0000000000000000000000000000000000000805';
const MODULE_ADDRESSES = [METAGRAPH, SUBNET, NEURON, STAKING];

/** 1e9 wei: the unit of the Bittensor-compatible amounts. */
const RAO = 1_000_000_000n;
/** Hyperparameter codes of INoesisSubnets.setHyperparameter (`Param` in state.rs). */
const PARAM = { tempo: 0, weightsRateLimit: 8 };
/** Reason codes of INoesisSubnets.getReason (`Reason` in state.rs). */
const REASON = { earned: 0, notWeighted: 6 };
/** Short tempo: an epoch every TEMPO + 1 blocks. */
const TEMPO = 9n;

// Dev account `spare` funds this file's fresh accounts; everything else is sent from those.
const funder = viemClients(ACCOUNT.spare);
const { publicClient } = funder;
const hasModule = (await publicClient.getCode({ address: METAGRAPH })) !== undefined;
const skip = hasModule ? false : 'no subnets module at 0x…0802 (not a Noesis node)';

/** bytes32 hotkey of an EVM address, as the neuron precompile maps its caller. */
const hotkeyOf = (address) => pad(address, { size: 32 }).toLowerCase();

async function send(clients, request) {
  const hash = await clients.walletClient.writeContract(request);
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.status, 'success', `${request.functionName} reverted`);
  return { receipt, events: parseEventLogs({ abi: ABI.events, logs: receipt.logs }) };
}

async function transfer(clients, to, value) {
  const hash = await clients.walletClient.sendTransaction({ to, value });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  assert.equal(receipt.status, 'success');
  return receipt;
}

/** eth_call of a getter, at `blockNumber` if given. */
const read = (address, abi, functionName, args, blockNumber) =>
  publicClient.readContract({ address, abi, functionName, args, blockNumber });
const metagraph = (functionName, args, blockNumber) => read(METAGRAPH, ABI.metagraph, functionName, args, blockNumber);
const noesis = (functionName, args, blockNumber) => read(SUBNET, ABI.noesis, functionName, args, blockNumber);

/** The one event named `name` among `events`. */
function only(events, name) {
  const found = events.filter((e) => e.eventName === name);
  assert.equal(found.length, 1, `expected one ${name} event, got ${found.length}`);
  return found[0].args;
}

/** The ContractFunctionRevertedError inside a viem error, or fails the test. */
function revertedError(err) {
  assert.ok(err instanceof BaseError, `expected a viem error, got: ${err}`);
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  assert.ok(reverted, `expected a decoded revert, got: ${err.message}`);
  return reverted;
}

/** Commit-reveal epoch index of `block` (weights.rs `epoch_index`). */
const epochIndex = (netuid, block) => (block + BigInt(netuid) + 1n) / (TEMPO + 1n);
/** Whether the epoch of `netuid` runs at the end of `block` (epoch.rs `end_block`). */
const epochRunsAt = (netuid, block) => (block + BigInt(netuid) + 1n) % (TEMPO + 1n) === 0n;

/** Sends self-transfers (one block each) until the latest block satisfies `done`. */
async function mineUntil(clients, done) {
  for (let i = 0; i < 100; i++) {
    const latest = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (done(latest)) return latest;
    await transfer(clients, clients.account.address, 0n);
  }
  throw new Error('mined 100 blocks without reaching the target');
}

/**
 * One subnet with its owner's short tempo, a validator and three miners registered by
 * burnedRegister, and stake on the validator; created once, so every test can run alone.
 */
let shared;
function sharedSubnet() {
  shared ??= createSubnet();
  return shared;
}

async function createSubnet() {
  const owner = viemClients(freshAccount());
  const validator = viemClients(freshAccount());
  // The lock cost doubles with each subnet (decaying over two weeks of blocks), so a chain
  // on which this file already ran many times would drain the funding account.
  const firstCost = await noesis('getLockCost');
  assert.ok(
    firstCost <= parseEther('1000'),
    `network lock cost is ${firstCost} wei after earlier subnets on this chain; run against a fresh noesis dev`,
  );
  await transfer(funder, owner.account.address, firstCost + parseEther('50'));
  await transfer(funder, validator.account.address, parseEther('50'));

  // registerNetwork pays the lock cost with msg.value. The cost decays block by block after
  // an earlier registration, so the next block may take a little less (and refund the rest).
  const lockCost = await noesis('getLockCost');
  const registered = await send(owner, {
    address: SUBNET,
    abi: ABI.subnet,
    functionName: 'registerNetwork',
    args: [hotkeyOf(owner.account.address)],
    value: lockCost,
  });
  const net = only(registered.events, 'NetworkRegistered');
  const netuid = Number(net.netuid);
  assert.equal(net.owner, owner.account.address);
  assert.ok(net.lockCost <= lockCost && net.lockCost >= parseEther('100'), `lock cost ${net.lockCost}`);
  assert.equal((await noesis('getPool', [netuid]))[0] >= net.lockCost, true, 'the lock seeds the pool');
  assert.equal(await noesis('networkCount'), netuid);
  assert.equal(await noesis('getSubnetOwner', [netuid]), owner.account.address);

  // The owner shortens the tempo (Noesis extension) and lifts the weights rate limit
  // (Bittensor setter; weights are revealed once here, so only to exercise it).
  const tempoSet = await send(owner, {
    address: SUBNET,
    abi: ABI.noesis,
    functionName: 'setHyperparameter',
    args: [netuid, PARAM.tempo, TEMPO],
  });
  const rateSet = await send(owner, {
    address: SUBNET,
    abi: ABI.subnet,
    functionName: 'setWeightsSetRateLimit',
    args: [netuid, 0n],
  });

  // The validator registers itself (its hotkey is its address: it sets weights as the
  // caller); the owner registers three miner hotkeys. Each pays the current burn.
  const register = async (clients, hotkey) => {
    const burn = await noesis('getBurn', [netuid]);
    const { events } = await send(clients, {
      address: NEURON,
      abi: ABI.neuron,
      functionName: 'burnedRegister',
      args: [netuid, hotkey],
      value: burn,
    });
    const reg = only(events, 'NeuronRegistered');
    assert.equal(reg.hotkey, hotkey);
    assert.equal(reg.coldkey, clients.account.address);
    assert.equal(reg.burn, burn);
    assert.equal(await metagraph('getHotkey', [netuid, reg.uid]), hotkey);
    assert.equal(await metagraph('getColdkey', [netuid, reg.uid]), hotkeyOf(clients.account.address));
    return reg.uid;
  };
  const validatorHotkey = hotkeyOf(validator.account.address);
  const validatorUid = await register(validator, validatorHotkey);
  const minerHotkeys = [1, 2, 3].map((i) => keccak256(stringToHex(`noesis compat subnets miner ${i}`)));
  const minerUids = [];
  for (const hotkey of minerHotkeys) minerUids.push(await register(owner, hotkey));
  assert.equal(await metagraph('getUidCount', [netuid]), 4);

  // Stake on the validator: 20 native of its own (addStake, taken from its balance), and 10
  // native of the owner's with a limit price of 2 native per alpha (addStakeLimit).
  const ownStake = await send(validator, {
    address: STAKING,
    abi: ABI.staking,
    functionName: 'addStake',
    args: [validatorHotkey, 20n * RAO, BigInt(netuid)],
  });
  const ownerStake = await send(owner, {
    address: STAKING,
    abi: ABI.staking,
    functionName: 'addStakeLimit',
    args: [validatorHotkey, 10n * RAO, 2n * RAO, false, BigInt(netuid)],
  });

  return {
    owner,
    validator,
    netuid,
    validatorUid,
    validatorHotkey,
    minerUids,
    minerHotkeys,
    createdAt: registered.receipt.blockNumber,
    receipts: { tempoSet, rateSet, ownStake, ownerStake },
  };
}

test('abi/subnets: Subnets.sol compiles with solc-js to exactly the ABI of the JSON files', () => {
  const compiled = compileSources({ 'Subnets.sol': readFileSync(new URL('Subnets.sol', ABI_DIR), 'utf8') });
  // Key order and solc's extra `internalType`s aside, the ABIs must be equal.
  const canon = (v) => {
    if (Array.isArray(v)) return v.map(canon).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).filter((k) => k !== 'internalType').sort().map((k) => [k, canon(v[k])]));
    }
    return v;
  };
  const files = { IMetagraph: ABI.metagraph, ISubnet: ABI.subnet, INeuron: ABI.neuron, IStaking: ABI.staking, INoesisSubnets: ABI.noesis, ISubnetsEvents: ABI.events };
  assert.deepEqual(Object.keys(compiled).sort(), Object.keys(files).sort());
  for (const [name, abi] of Object.entries(files)) {
    assert.deepEqual(canon(compiled[name].abi), canon(abi), name);
  }
});

test('subnets: owner creates a subnet and sets hyperparameters; events agree with getters', { skip, timeout: TIMEOUT }, async () => {
  const { netuid, receipts } = await sharedSubnet();
  const tempo = only(receipts.tempoSet.events, 'HyperparameterSet');
  assert.deepEqual([tempo.netuid, tempo.param, tempo.value], [netuid, PARAM.tempo, TEMPO]);
  assert.equal(await noesis('getHyperparameter', [netuid, PARAM.tempo]), TEMPO);
  const rate = only(receipts.rateSet.events, 'HyperparameterSet');
  assert.deepEqual([rate.param, rate.value], [PARAM.weightsRateLimit, 0n]);
  assert.equal(await read(SUBNET, ABI.subnet, 'getWeightsSetRateLimit', [netuid]), 0n);
  assert.equal(await read(SUBNET, ABI.subnet, 'getCommitRevealWeightsEnabled', [netuid]), true);
  // The extensions answer at every module address.
  for (const address of MODULE_ADDRESSES) {
    assert.equal(await read(address, ABI.noesis, 'getHyperparameter', [netuid, PARAM.tempo]), TEMPO);
  }
});

test('subnets: stake on the validator; StakeAdded agrees with the staking getters', { skip, timeout: TIMEOUT }, async () => {
  const { owner, validator, netuid, validatorUid, validatorHotkey, receipts } = await sharedSubnet();
  const own = only(receipts.ownStake.events, 'StakeAdded');
  assert.equal(own.coldkey, validator.account.address);
  assert.equal(own.hotkey, validatorHotkey);
  assert.equal(own.nativeIn, 20n * RAO * RAO);
  const byOwner = only(receipts.ownerStake.events, 'StakeAdded');
  assert.equal(byOwner.coldkey, owner.account.address);
  assert.equal(byOwner.nativeIn, 10n * RAO * RAO, 'the limit price let the whole amount in');
  assert.ok(byOwner.alphaOut > 0n && byOwner.alphaOut < byOwner.nativeIn, 'price above 1 after the first stake, and a fee');

  // The owner's stake is never credited with emission, so its getter is exactly the event
  // (rao, rounded down).
  const ownerStake = await read(STAKING, ABI.staking, 'getStake', [validatorHotkey, hotkeyOf(owner.account.address), BigInt(netuid)]);
  assert.equal(ownerStake, byOwner.alphaOut / RAO);
  // The validator's stake and the hotkey total only grow (dividends).
  const ownStake = await read(STAKING, ABI.staking, 'getStake', [validatorHotkey, hotkeyOf(validator.account.address), BigInt(netuid)]);
  assert.ok(ownStake >= own.alphaOut / RAO);
  const total = await read(STAKING, ABI.staking, 'getTotalAlphaStaked', [validatorHotkey, BigInt(netuid)]);
  assert.ok(total >= (own.alphaOut + byOwner.alphaOut) / RAO);
  assert.equal(await metagraph('getStake', [netuid, validatorUid]), total);
});

test('subnets: revert reasons of the module surface to viem', { skip, timeout: TIMEOUT }, async () => {
  const { owner, validator, netuid, minerUids } = await sharedSubnet();
  // Commit-reveal is on by default: direct weights are refused.
  const setWeights = {
    address: NEURON,
    abi: ABI.neuron,
    functionName: 'setWeights',
    args: [netuid, [minerUids[0]], [65535], 0n],
    account: validator.account,
  };
  await assert.rejects(publicClient.simulateContract(setWeights), (err) => {
    assert.equal(revertedError(err).reason, 'commit-reveal is enabled on this subnet: use commitWeights and revealWeights');
    return true;
  });
  // The same through writeContract (its gas estimate fails with the reason).
  await assert.rejects(validator.walletClient.writeContract(setWeights), (err) => {
    assert.equal(revertedError(err).reason, 'commit-reveal is enabled on this subnet: use commitWeights and revealWeights');
    return true;
  });
  // Only the owner sets hyperparameters.
  await assert.rejects(
    publicClient.simulateContract({
      address: SUBNET,
      abi: ABI.noesis,
      functionName: 'setHyperparameter',
      args: [netuid, PARAM.tempo, 5n],
      account: validator.account,
    }),
    (err) => {
      assert.equal(revertedError(err).reason, 'only the subnet owner may set hyperparameters');
      return true;
    },
  );
  // Getters take no value.
  await assert.rejects(
    publicClient.simulateContract({
      address: METAGRAPH,
      abi: ABI.metagraph,
      functionName: 'getUidCount',
      args: [netuid],
      value: 1n,
      account: owner.account,
    }),
    (err) => {
      assert.equal(revertedError(err).reason, 'function does not take value');
      return true;
    },
  );
});

test('subnets: commit-reveal weights, an epoch, and emission to the weighted miner', { skip, timeout: TIMEOUT }, async (t) => {
  const { owner, validator, netuid, validatorUid, minerUids, minerHotkeys, createdAt } = await sharedSubnet();
  const [weighted, unweighted] = minerUids;

  // Commit: keccak256(abi.encode(address caller, uint16 netuid, uint16[] uids,
  // uint16[] values, uint16[] salt, uint64 versionKey)) (weights.rs `commit_hash`).
  const uids = [weighted];
  const values = [65535];
  const salt = [7, 3, 1, 9];
  const versionKey = 0n;
  const hash = keccak256(
    encodeAbiParameters(parseAbiParameters('address, uint16, uint16[], uint16[], uint16[], uint64'), [
      validator.account.address,
      netuid,
      uids,
      values,
      salt,
      versionKey,
    ]),
  );
  const committed = await send(validator, {
    address: NEURON,
    abi: ABI.neuron,
    functionName: 'commitWeights',
    args: [netuid, hash],
  });
  const commit = only(committed.events, 'WeightsCommitted');
  assert.deepEqual([commit.netuid, commit.uid, commit.hash], [netuid, validatorUid, hash]);
  const [storedHash, storedBlock] = await noesis('getCommit', [netuid, validatorUid]);
  assert.equal(storedHash, hash);
  assert.equal(storedBlock, committed.receipt.blockNumber);
  const commitIndex = epochIndex(netuid, committed.receipt.blockNumber);

  const reveal = {
    address: NEURON,
    abi: ABI.neuron,
    functionName: 'revealWeights',
    args: [netuid, uids, values, salt, versionKey],
  };
  // Still in the commit's epoch: too early.
  if (epochIndex(netuid, (await publicClient.getBlockNumber({ cacheTime: 0 })) + 1n) === commitIndex) {
    await assert.rejects(publicClient.simulateContract({ ...reveal, account: validator.account }), (err) => {
      assert.equal(revertedError(err).reason, 'reveal too early: wait for the reveal epoch');
      return true;
    });
  }

  // Reveal in the next epoch index, after its first block (whose end ran the epoch that
  // gave the staked validator its permit), so exactly one epoch sees the weights.
  await mineUntil(validator, (b) => epochIndex(netuid, b) === commitIndex + 1n && !epochRunsAt(netuid, b + 1n));
  await assert.rejects(
    publicClient.simulateContract({ ...reveal, args: [netuid, uids, [65534], salt, versionKey], account: validator.account }),
    (err) => {
      assert.equal(revertedError(err).reason, 'revealed weights do not match the commit hash');
      return true;
    },
  );
  const revealed = await send(validator, reveal);
  assert.equal(epochIndex(netuid, revealed.receipt.blockNumber), commitIndex + 1n, 'revealed in the reveal epoch');
  const rev = only(revealed.events, 'WeightsRevealed');
  assert.deepEqual([rev.netuid, rev.uid], [netuid, validatorUid]);
  assert.equal(await metagraph('getLastUpdate', [netuid, validatorUid]), revealed.receipt.blockNumber);
  assert.equal(await metagraph('getValidatorStatus', [netuid, validatorUid]), true, 'permit from the last epoch');

  // Mine past the next epoch; read its results at its block (blocks from other senders
  // may have followed it).
  let epochBlock = revealed.receipt.blockNumber + 1n;
  while (!epochRunsAt(netuid, epochBlock)) epochBlock++;
  await mineUntil(validator, (b) => b >= epochBlock);
  const metagraphAt = (functionName, args) => metagraph(functionName, args, epochBlock);
  const noesisAt = (functionName, args) => noesis(functionName, args, epochBlock);

  // Metagraph getters: the weighted miner earned, the other did not.
  const incentive = await metagraphAt('getIncentive', [netuid, weighted]);
  const emission = await metagraphAt('getEmission', [netuid, weighted]);
  const emissionWei = await noesisAt('getEmissionWei', [netuid, weighted]);
  assert.equal(incentive, 65535, 'the only weighted miner takes all incentive');
  assert.ok(emission > 0n, 'weighted miner has emission');
  assert.equal(emission, emissionWei / RAO, 'getEmission is getEmissionWei in rao');
  assert.equal(await metagraphAt('getDividends', [netuid, weighted]), 0);
  assert.equal(await noesisAt('getReason', [netuid, weighted]), REASON.earned);
  // Its emission was credited as alpha stake of its hotkey (it had none before).
  assert.equal(await metagraphAt('getStake', [netuid, weighted]), emission);
  assert.equal(await read(STAKING, ABI.staking, 'getTotalAlphaStaked', [minerHotkeys[0], BigInt(netuid)], epochBlock), emission);

  const dividends = await metagraphAt('getDividends', [netuid, validatorUid]);
  const validatorEmission = await metagraphAt('getEmission', [netuid, validatorUid]);
  t.diagnostic(
    `epoch at block ${epochBlock} on netuid ${netuid}: miner uid ${weighted} incentive ${incentive}/65535, ` +
      `emission ${emission} rao; validator uid ${validatorUid} dividends ${dividends}/65535, emission ${validatorEmission} rao`,
  );

  assert.equal(await metagraphAt('getIncentive', [netuid, unweighted]), 0);
  assert.equal(await metagraphAt('getEmission', [netuid, unweighted]), 0n);
  assert.equal(await noesisAt('getReason', [netuid, unweighted]), REASON.notWeighted);
  assert.equal(await metagraphAt('getIsActive', [netuid, validatorUid]), true);
  assert.ok((await metagraphAt('getVtrust', [netuid, validatorUid])) > 0, 'validator trust');
  const [, revealedCommitBlock] = await noesisAt('getCommit', [netuid, validatorUid]);
  assert.equal(revealedCommitBlock, 0n, 'the reveal cleared the commit');

  // Epoch events: emitted by the end-of-block system call, in no transaction's receipt;
  // eth_getLogs serves them (from no particular filter address here). They must agree
  // with the getters.
  const logs = await publicClient.getLogs({ fromBlock: createdAt, toBlock: epochBlock });
  const events = parseEventLogs({ abi: ABI.events, logs }).filter((e) => Number(e.args.netuid) === netuid);
  const inEpoch = events.filter((e) => e.blockNumber === epochBlock);
  const epochs = events.filter((e) => e.eventName === 'EpochEmission');
  const epoch = inEpoch.find((e) => e.eventName === 'EpochEmission');
  assert.ok(epoch, `an EpochEmission event in block ${epochBlock} (epoch events are served by eth_getLogs)`);
  assert.equal(epoch.args.blockNumber, epochBlock);
  const emitted = (uid) => inEpoch.filter((e) => e.eventName === 'NeuronEmission' && e.args.uid === uid);
  const [miner] = emitted(weighted);
  assert.ok(miner, 'a NeuronEmission event for the weighted miner');
  assert.equal(miner.args.hotkey, minerHotkeys[0]);
  assert.equal(miner.args.incentiveAlpha + miner.args.dividendAlpha, emissionWei, 'event = getEmissionWei');
  assert.equal(miner.args.incentiveAlpha > 0n, true);
  assert.equal(emitted(unweighted).length, 0, 'no event for the unweighted miner');
  const [val] = emitted(validatorUid);
  assert.equal(val.args.incentiveAlpha + val.args.dividendAlpha, await noesisAt('getEmissionWei', [netuid, validatorUid]));
  const neuronEvents = inEpoch.filter((e) => e.eventName === 'NeuronEmission');
  const sum = (key) => neuronEvents.reduce((acc, e) => acc + e.args[key], 0n);
  assert.equal(epoch.args.minerAlpha, sum('incentiveAlpha'));
  assert.equal(epoch.args.validatorAlpha, sum('dividendAlpha'));
  // Every owner cut so far was staked on the owner's hotkey under the owner's coldkey.
  const ownerCuts = epochs.reduce((acc, e) => acc + e.args.ownerCut, 0n);
  assert.ok(ownerCuts > 0n);
  const ownerAddress = owner.account.address;
  const ownerHotkeyStake = await read(STAKING, ABI.staking, 'getStake', [hotkeyOf(ownerAddress), hotkeyOf(ownerAddress), BigInt(netuid)], epochBlock);
  assert.equal(ownerHotkeyStake, ownerCuts / RAO);
  t.diagnostic(`${epochs.length} epochs of netuid ${netuid} in blocks ${createdAt}..${epochBlock}; epoch events served by eth_getLogs`);
});
