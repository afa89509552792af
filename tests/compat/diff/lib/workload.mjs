// Deterministic workload: the sequence of transactions (and what they touch) derived from a
// seed. Generation never looks at either chain, so both sides get the identical sequence.
import {
  encodeAbiParameters,
  encodeDeployData,
  encodeFunctionData,
  getAddress,
  getContractAddress,
  hexToBytes,
  keccak256,
  numberToHex,
  parseGwei,
  stringToHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { PRECOMPILES, randomPrecompileCall } from './precompile-inputs.mjs';
import { Prng } from './prng.mjs';

export const ACTOR_COUNT = 5;
/** Deployable contract kinds (name of the compiled contract). */
const KINDS = ['Storage', 'Emitter', 'Reverter', 'GasBurner', 'Factory', 'Precompiles'];
/** Storage slots the workload writes in Storage contracts: 0..STORAGE_SLOTS-1. */
const STORAGE_SLOTS = 24;
/** GasBurner.burnStorage writes slots from this base. */
const BURN_SLOT_BASE = 100;
/** Priority fees picked from (capped at the run's fee cap when signing). */
const TIPS = [0n, 1n, parseGwei('0.1'), parseGwei('1')];

/** Relative frequency of each workload operation. */
const OPERATIONS = [
  [8, 'transferFresh'],
  [3, 'transferSelf'],
  [3, 'transferActor'],
  [4, 'transferContract'],
  [2, 'transferPrecompile'],
  [4, 'deploy'],
  [1, 'deployFailing'],
  [12, 'storage'],
  [10, 'emitter'],
  [10, 'reverter'],
  [8, 'burner'],
  [8, 'factory'],
  [14, 'precompile'],
  [4, 'precompileDirect'],
  [1, 'valueToNonPayable'],
];

const word = (n) => numberToHex(n, { size: 32 });

/** Intrinsic gas, including the EIP-7623 calldata floor, so no generated tx is invalid. */
export function intrinsicGas(data, accessList = [], isCreate = false) {
  const bytes = hexToBytes(data ?? '0x');
  const zeros = bytes.filter((b) => b === 0).length;
  const nonZeros = bytes.length - zeros;
  let standard = 21000n + 4n * BigInt(zeros) + 16n * BigInt(nonZeros);
  if (isCreate) standard += 32000n + 2n * BigInt(Math.ceil(bytes.length / 32));
  for (const entry of accessList) standard += 2400n + 1900n * BigInt(entry.storageKeys.length);
  const floor = 21000n + 10n * BigInt(zeros + 4 * nonZeros);
  return standard > floor ? standard : floor;
}

/** Deterministic key of actor i for a seed. */
function actorKey(seed, i) {
  return keccak256(stringToHex(`noesis-differential:${seed}:actor:${i}`));
}

/**
 * Generates the workload.
 * @returns {{
 *   actors: import('viem').PrivateKeyAccount[],
 *   ops: object[],              // see Generator.#push for the shape
 *   tracked: Map<string,string>, // lowercase address -> role: actor | recipient | contract | precompile
 *   slots: Map<string,Set<string>>, // lowercase contract address -> storage slots (hex) to compare
 * }}
 */
export async function generateWorkload({ seed, count, artifacts, fundWei, funderIndex }) {
  const generator = new Generator(new Prng(seed), artifacts, seed);
  generator.setup({ fundWei, funderIndex });
  for (let i = 0; i < count; i++) await generator.randomOp();
  return { actors: generator.actors, ops: generator.ops, tracked: generator.tracked, slots: generator.slots };
}

class Generator {
  constructor(rng, artifacts, seed) {
    this.rng = rng;
    this.artifacts = artifacts;
    this.actors = Array.from({ length: ACTOR_COUNT }, (_, i) => privateKeyToAccount(actorKey(seed, i)));
    this.nonces = new Array(ACTOR_COUNT).fill(0);
    this.contracts = Object.fromEntries(KINDS.map((k) => [k, []])); // kind -> [address]
    this.recipients = [];
    this.ops = [];
    this.tracked = new Map();
    this.slots = new Map();
    this.actors.forEach((a) => this.tracked.set(a.address.toLowerCase(), 'actor'));
  }

  // --- bookkeeping ---

  track(address, role, slots = []) {
    const key = address.toLowerCase();
    if (!this.tracked.has(key)) this.tracked.set(key, role);
    if (slots.length > 0) {
      if (!this.slots.has(key)) this.slots.set(key, new Set());
      for (const slot of slots) this.slots.get(key).add(word(BigInt(slot)));
    }
  }

  /** Appends an op. `from` is an actor index, or { dev: i } for a dev (funder) account. */
  #push({ phase = 'workload', kind, label, from, to = null, value = 0n, data = '0x', budget = 0n, isCreate = false }) {
    const rng = this.rng;
    const type = rng.weighted([[7, 'eip1559'], [2, 'legacy'], [1, 'eip2930']]);
    const accessList = type === 'eip2930' || (type === 'eip1559' && rng.chance(0.2)) ? this.#accessList(to) : undefined;
    const gas = intrinsicGas(data, accessList ?? [], isCreate) + budget;
    const op = {
      index: this.ops.length,
      phase,
      kind,
      label,
      from,
      nonce: typeof from === 'number' ? this.nonces[from]++ : undefined, // dev nonces are per side
      tx: { type, to, value, data, gas, accessList, tip: type === 'eip1559' ? rng.pick(TIPS) : undefined },
    };
    this.ops.push(op);
    return op;
  }

  #accessList(to) {
    const rng = this.rng;
    const entries = [];
    const n = rng.range(0, 2);
    for (let i = 0; i < n; i++) {
      const address = rng.weighted([[3, to], [1, getAddress(rng.hex(20))], [1, PRECOMPILES.sha256]]) ?? getAddress(rng.hex(20));
      const keys = Array.from({ length: rng.range(0, 3) }, () => word(BigInt(rng.range(0, 4))));
      entries.push({ address: getAddress(address), storageKeys: keys });
    }
    return entries;
  }

  #actor() {
    return this.rng.int(ACTOR_COUNT);
  }

  #call(kind, functionName, args) {
    return encodeFunctionData({ abi: this.artifacts[kind].abi, functionName, args });
  }

  #value() {
    return this.rng.weighted([[3, 0n], [1, 1n], [4, BigInt(this.rng.range(1, 10_000_000)) * 1_000_000_000n]]);
  }

  /** Deploys a contract of `kind` from actor `from`; returns its predicted (CREATE) address. */
  #deploy(kind, from, { phase = 'workload', budget = 3_000_000n } = {}) {
    const rng = this.rng;
    let args = [];
    let value = 0n;
    let slots = [];
    if (kind === 'Storage') {
      const slot = rng.int(STORAGE_SLOTS);
      args = [BigInt(slot), rng.bigint(256)];
      value = this.#value(); // payable constructor
      slots = [slot];
    }
    const data = encodeDeployData({ abi: this.artifacts[kind].abi, bytecode: this.artifacts[kind].bytecode, args });
    const address = getContractAddress({ from: this.actors[from].address, nonce: BigInt(this.nonces[from]) });
    const op = this.#push({ phase, kind: 'deploy', label: `deploy ${kind}`, from, data, value, budget, isCreate: true });
    op.expectedAddress = address;
    this.track(address, 'contract', [...slots, ...defaultSlots(kind)]);
    return { address, op };
  }

  // --- phases ---

  setup({ fundWei, funderIndex }) {
    for (let i = 0; i < ACTOR_COUNT; i++) {
      this.#push({ phase: 'setup', kind: 'transfer', label: `fund actor ${i}`, from: { dev: funderIndex }, to: this.actors[i].address, value: fundWei });
    }
    KINDS.forEach((kind, i) => {
      const { address } = this.#deploy(kind, i % ACTOR_COUNT, { phase: 'setup' });
      this.contracts[kind].push(address);
    });
  }

  async randomOp() {
    const rng = this.rng;
    const operation = rng.weighted(OPERATIONS);
    const from = this.#actor();
    const target = (kind) => rng.pick(this.contracts[kind]);

    switch (operation) {
      case 'transferFresh': {
        const reuse = this.recipients.length > 0 && rng.chance(0.3);
        const to = reuse ? rng.pick(this.recipients) : getAddress(rng.hex(20));
        if (!reuse) this.recipients.push(to);
        this.track(to, 'recipient');
        return this.#push({ kind: 'transfer', label: 'transfer to fresh address', from, to, value: this.#value(), budget: BigInt(rng.pick([0, 1000, 20000])) });
      }
      case 'transferSelf':
        return this.#push({ kind: 'transfer', label: 'transfer to self', from, to: this.actors[from].address, value: this.#value() });
      case 'transferActor':
        return this.#push({ kind: 'transfer', label: 'transfer to another actor', from, to: this.actors[this.#actor()].address, value: this.#value() });
      case 'transferContract': {
        // Storage accepts ETH (and logs it); Reverter rejects it.
        const kind = rng.pick(['Storage', 'Reverter']);
        return this.#push({ kind: 'transfer', label: `transfer to ${kind}`, from, to: target(kind), value: this.#value(), budget: 40_000n });
      }
      case 'transferPrecompile': {
        const name = rng.pick(Object.keys(PRECOMPILES));
        this.track(PRECOMPILES[name], 'precompile');
        return this.#push({ kind: 'transfer', label: `transfer to precompile ${name}`, from, to: PRECOMPILES[name], value: BigInt(rng.range(0, 1000)), budget: BigInt(rng.pick([0, 5_000, 60_000])) });
      }
      case 'deploy': {
        const kind = rng.pick(KINDS);
        const tight = rng.chance(0.15); // runs out of gas in the constructor or the code deposit
        const { address } = this.#deploy(kind, from, { budget: tight ? BigInt(rng.range(1_000, 80_000)) : 3_000_000n });
        if (!tight) this.contracts[kind].push(address);
        return undefined;
      }
      case 'deployFailing': {
        const { abi, bytecode } = this.artifacts.FailingChild;
        const address = getContractAddress({ from: this.actors[from].address, nonce: BigInt(this.nonces[from]) });
        this.track(address, 'contract');
        const op = this.#push({ kind: 'deploy', label: 'deploy FailingChild (constructor reverts)', from, data: encodeDeployData({ abi, bytecode }), budget: 500_000n, isCreate: true });
        op.expectedAddress = address;
        return op;
      }
      case 'storage':
        return this.#storageOp(from, target('Storage'));
      case 'emitter':
        return this.#emitterOp(from, target('Emitter'));
      case 'reverter':
        return this.#reverterOp(from, target('Reverter'));
      case 'burner':
        return this.#burnerOp(from, target('GasBurner'));
      case 'factory':
        return this.#factoryOp(from, target('Factory'));
      case 'precompile': {
        const to = target('Precompiles');
        const call = await randomPrecompileCall(rng);
        const forward = rng.chance(0.15) ? BigInt(rng.range(0, 3_000)) : 500_000n;
        const calls = this.#counter(to);
        this.track(to, 'contract', [0, mappingSlot(calls, 1)]);
        return this.#push({ kind: 'precompile', label: `Precompiles.invoke ${call.label}${forward < 500_000n ? ' (little gas)' : ''}`, from, to, data: this.#call('Precompiles', 'invoke', [call.address, call.input, forward]), budget: forward + 120_000n });
      }
      case 'precompileDirect': {
        const call = await randomPrecompileCall(rng);
        const budget = rng.chance(0.2) ? BigInt(rng.range(0, 2_000)) : 600_000n;
        return this.#push({ kind: 'precompile', label: `tx to ${call.label}${budget < 600_000n ? ' (little gas)' : ''}`, from, to: call.address, data: call.input, budget });
      }
      case 'valueToNonPayable':
        return this.#push({ kind: 'revert', label: 'value to non-payable Emitter.emitMany', from, to: target('Emitter'), value: 1n, data: this.#call('Emitter', 'emitMany', [1n, rng.hex(32)]), budget: 100_000n });
      default:
        throw new Error(`unknown operation ${operation}`);
    }
  }

  /** Per-contract call counter (Precompiles results index), assuming calls succeed. */
  #counter(address) {
    this.counters ??= new Map();
    const n = this.counters.get(address) ?? 0;
    this.counters.set(address, n + 1);
    return n;
  }

  #storageOp(from, to) {
    const rng = this.rng;
    const variant = rng.weighted([[5, 'write'], [3, 'writeRange'], [2, 'clear']]);
    const slot = rng.int(STORAGE_SLOTS);
    if (variant === 'write') {
      const value = rng.chance(0.2) ? 0n : rng.bigint(rng.pick([8, 64, 256]));
      this.track(to, 'contract', [slot]);
      return this.#push({ kind: 'storage', label: 'Storage.write', from, to, data: this.#call('Storage', 'write', [BigInt(slot), value]), budget: 60_000n });
    }
    if (variant === 'clear') {
      this.track(to, 'contract', [slot]);
      return this.#push({ kind: 'storage', label: 'Storage.clear', from, to, data: this.#call('Storage', 'clear', [BigInt(slot)]), budget: 40_000n });
    }
    const n = rng.range(1, 8);
    const start = rng.int(STORAGE_SLOTS - n);
    this.track(to, 'contract', Array.from({ length: n }, (_, i) => start + i));
    const tight = rng.chance(0.15); // out of gas part-way through the loop
    const budget = tight ? BigInt(rng.range(2_000, 15_000 * n)) : 30_000n + 25_000n * BigInt(n);
    return this.#push({ kind: 'storage', label: `Storage.writeRange x${n}${tight ? ' (tight gas)' : ''}`, from, to, data: this.#call('Storage', 'writeRange', [BigInt(start), BigInt(n), rng.hex(32)]), budget });
  }

  #emitterOp(from, to) {
    const rng = this.rng;
    if (rng.chance(0.5)) {
      const topics = rng.range(0, 4);
      const data = this.#call('Emitter', 'emitRaw', [BigInt(topics), [rng.hex(32), rng.hex(32), rng.hex(32), rng.hex(32)], rng.hex(rng.range(0, 100))]);
      return this.#push({ kind: 'log', label: `Emitter.emitRaw LOG${topics}`, from, to, data, budget: 80_000n });
    }
    const n = rng.range(0, 6);
    return this.#push({ kind: 'log', label: `Emitter.emitMany x${n}`, from, to, data: this.#call('Emitter', 'emitMany', [BigInt(n), rng.hex(32)]), budget: 40_000n + 15_000n * BigInt(n) });
  }

  #reverterOp(from, to) {
    const rng = this.rng;
    const variant = rng.weighted([[3, 'reason'], [3, 'requireEven'], [2, 'custom'], [2, 'panic'], [1, 'invalid'], [2, 'catchInner']]);
    const reason = `reason-${rng.hex(rng.range(0, 40))}`;
    const call = (fn, args) => this.#call('Reverter', fn, args);
    switch (variant) {
      case 'reason':
        return this.#push({ kind: 'revert', label: 'Reverter.failReason', from, to, data: call('failReason', [reason]), budget: 80_000n });
      case 'requireEven':
        return this.#push({ kind: 'revert', label: 'Reverter.requireEven', from, to, data: call('requireEven', [rng.bigint(16)]), budget: 80_000n });
      case 'custom':
        return this.#push({ kind: 'revert', label: 'Reverter.failCustom', from, to, data: call('failCustom', [rng.bigint(64)]), budget: 80_000n });
      case 'panic': {
        const kind = rng.range(0, 3);
        return this.#push({ kind: 'revert', label: `Reverter.failPanic kind ${kind}`, from, to, data: call('failPanic', [BigInt(kind), rng.bigint(8)]), budget: 80_000n });
      }
      case 'invalid':
        return this.#push({ kind: 'revert', label: 'Reverter.failInvalid (burns all gas)', from, to, data: call('failInvalid', []), budget: BigInt(rng.range(5_000, 100_000)) });
      default:
        return this.#push({ kind: 'revert', label: 'Reverter.catchInner (inner revert caught)', from, to, data: call('catchInner', [reason]), budget: 120_000n });
    }
  }

  #burnerOp(from, to) {
    const rng = this.rng;
    if (rng.chance(0.6)) {
      const iterations = BigInt(rng.range(0, 3_000));
      return this.#push({ kind: 'burn', label: `GasBurner.burn ${iterations}`, from, to, data: this.#call('GasBurner', 'burn', [iterations]), budget: BigInt(rng.range(5_000, 400_000)) });
    }
    const n = rng.range(1, 10);
    const start = BURN_SLOT_BASE + rng.range(0, 20);
    this.track(to, 'contract', Array.from({ length: n }, (_, i) => start + i));
    return this.#push({ kind: 'burn', label: `GasBurner.burnStorage x${n}`, from, to, data: this.#call('GasBurner', 'burnStorage', [BigInt(start), BigInt(n)]), budget: BigInt(rng.range(10_000, 300_000)) });
  }

  #factoryOp(from, to) {
    const rng = this.rng;
    const variant = rng.weighted([[4, 'create'], [4, 'create2'], [1, 'createFailing']]);
    const value = rng.chance(0.4) ? this.#value() : 0n;
    if (variant === 'create') {
      return this.#push({ kind: 'create', label: 'Factory.create (CREATE)', from, to, value, data: this.#call('Factory', 'create', [rng.bigint(32)]), budget: 250_000n });
    }
    if (variant === 'create2') {
      // Small salt/argument space, so some CREATE2s collide with an earlier child and revert.
      const salt = word(BigInt(rng.range(0, 2)));
      return this.#push({ kind: 'create', label: 'Factory.create2 (CREATE2)', from, to, value, data: this.#call('Factory', 'create2', [salt, BigInt(rng.range(1, 2))]), budget: 250_000n });
    }
    return this.#push({ kind: 'create', label: 'Factory.createFailing (caught)', from, to, data: this.#call('Factory', 'createFailing', []), budget: 200_000n });
  }
}

/** Slots every instance of a contract kind has and the workload may change. */
function defaultSlots(kind) {
  return { Emitter: [0], Reverter: [0, 1], GasBurner: [0], Factory: [0, 1], Precompiles: [0] }[kind] ?? [];
}

/** Storage slot of mapping(uint256 => ...) entry `key` declared at slot `base`. */
export function mappingSlot(key, base) {
  return BigInt(keccak256(encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }], [BigInt(key), BigInt(base)])));
}

/** Slots of a Factory child (value, parent). */
export const CHILD_SLOTS = [0, 1].map((s) => word(BigInt(s)));
