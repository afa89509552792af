#!/usr/bin/env node
// Differential conformance tool: sends the same seeded pseudo-random workload to two
// automining JSON-RPC endpoints (A and B) and compares receipts and final state.
// Usage: node diff/differential.mjs A_URL B_URL [seed] [count]   (see --help)
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatEther, formatGwei, keccak256, parseEther, parseGwei, stringToHex } from 'viem';
import { mnemonicToAccount } from 'viem/accounts';
import { compileFiles, EVM_VERSION, SOLC_VERSION } from '../lib/solc.mjs';
import { CHILD_SLOTS, generateWorkload } from './lib/workload.mjs';
import { compareReceipts, compareState, createdChildren, Mismatches } from './lib/compare.mjs';
import { Endpoint, mapLimit } from './lib/rpc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MNEMONIC = 'test test test test test test test test test test test junk';
/** topic0 of Precompiles' `Called(address,bool,bytes)`. */
const CALLED_TOPIC = keccak256(stringToHex('Called(address,bool,bytes)'));

const HELP = `Usage: node diff/differential.mjs A_URL B_URL [SEED] [COUNT] [options]

Sends the same deterministic workload (from SEED, default 1) of COUNT random transactions
(default 300, plus a short setup) to both endpoints and compares, per transaction, status,
gasUsed, logs, logsBloom and contractAddress, and at the end, for every touched account,
code, nonce change, balance change excluding fees, and the storage slots the workload wrote.

Options:
  --fund-eth N      ETH given to each workload actor by the funder (default 10)
  --funder I        dev account index (mnemonic "test ... junk") that funds the actors (default 9)
  --fee-cap-gwei G  maxFeePerGas / gasPrice for every transaction (default: 4x the larger base fee, at least 1 gwei)
  --json FILE       also write the full result (ops, receipts, mismatches) as JSON
  --verbose         print every transaction's outcome
Exit status: 0 when A and B agree, 1 on any mismatch, 2 when the run could not be carried out.`;

function parseCli() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'fund-eth': { type: 'string', default: '10' },
      funder: { type: 'string', default: '9' },
      'fee-cap-gwei': { type: 'string' },
      json: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length < 2) {
    console.log(HELP);
    process.exit(values.help ? 0 : 2);
  }
  const [a, b, seed = '1', count = '300'] = positionals;
  return {
    urls: [a, b],
    seed,
    count: Number(count),
    fundWei: parseEther(values['fund-eth']),
    funderIndex: Number(values.funder),
    feeCap: values['fee-cap-gwei'] ? parseGwei(values['fee-cap-gwei']) : undefined,
    json: values.json,
    verbose: values.verbose,
  };
}

class RunError extends Error {}

async function main() {
  const opts = parseCli();
  const artifacts = compileFiles(readdirSync(path.join(HERE, 'contracts')).map((f) => path.join(HERE, 'contracts', f)));
  const sides = await Promise.all(opts.urls.map((url, i) => new Endpoint(i === 0 ? 'A' : 'B', url).connect()));
  const funder = mnemonicToAccount(MNEMONIC, { addressIndex: opts.funderIndex });
  const workload = await generateWorkload({ ...opts, artifacts });

  console.log(`Differential run: seed=${opts.seed}, ${opts.count} workload + ${workload.ops.length - opts.count} setup transactions`);
  for (const side of sides) {
    const client = await side.request('web3_clientVersion').catch(() => 'unknown client');
    console.log(`  ${side.name}: ${side.url}  chain id ${side.chainId}  (${client})`);
  }
  console.log(`  contracts: solc ${SOLC_VERSION}, evmVersion ${EVM_VERSION}`);

  const feeCap = await preflight(sides, workload, funder, opts);
  console.log(`  fees: maxFeePerGas / gasPrice ${formatGwei(feeCap)} gwei for every transaction`);

  // Accounts whose state is compared at the end (children of factories are added later).
  const accounts = new Map(); // address -> { role, slots:Set }
  for (const [address, role] of workload.tracked) accounts.set(address, { role, slots: new Set(workload.slots.get(address) ?? []) });
  accounts.set(funder.address.toLowerCase(), { role: 'funder', slots: new Set() });
  const start = await Promise.all(sides.map((side) => readAccounts(side, [...accounts.keys()], () => [])));
  assertFresh(sides, start, accounts);

  // Execute: every op on both sides, one op at a time.
  const mismatches = new Mismatches();
  const fees = sides.map(() => new Map());
  const devNonces = await Promise.all(sides.map(async (side) => BigInt(await side.request('eth_getTransactionCount', [funder.address, 'latest']))));
  const results = [];
  const began = Date.now();
  for (const op of workload.ops) {
    const outcome = await Promise.all(sides.map((side, s) => runOp(side, op, { feeCap, signer: op.from.dev !== undefined ? funder : workload.actors[op.from], nonce: op.nonce ?? devNonces[s]++ })));
    results.push({ op, outcome });
    const failed = outcome.filter((o) => o.error);
    if (failed.length > 0) {
      outcome.forEach((o, s) => mismatches.add(`#${op.index} ${op.label}`, `submission on ${sides[s].name}`, o.error ?? o.hash, '(rejected or stuck: the run stops here, later nonces would diverge)'));
      break;
    }
    compareReceipts(op, outcome[0].receipt, outcome[1].receipt, mismatches);
    outcome.forEach(({ receipt }, s) => {
      const from = receipt.from.toLowerCase();
      fees[s].set(from, (fees[s].get(from) ?? 0n) + BigInt(receipt.gasUsed) * BigInt(receipt.effectiveGasPrice));
      for (const child of createdChildren(receipt)) {
        if (!accounts.has(child)) accounts.set(child, { role: 'child', slots: new Set(CHILD_SLOTS) });
      }
    });
    if (opts.verbose) console.log(describe(op, outcome));
    else if (results.length % 50 === 0) process.stderr.write(`  ... ${results.length}/${workload.ops.length} transactions\n`);
  }
  const seconds = ((Date.now() - began) / 1000).toFixed(1);

  // Final state (children did not exist at start: their start state is empty).
  const list = [...accounts.entries()].map(([address, { role, slots }]) => ({ address, role, slots: [...slots] }));
  for (const snapshot of start) {
    for (const { address } of list) if (!snapshot.has(address)) snapshot.set(address, { balance: 0n, nonce: 0n });
  }
  const end = await Promise.all(sides.map((side) => readAccounts(side, list.map((a) => a.address), (addr) => [...accounts.get(addr).slots])));
  const coinbases = new Set();
  for (const side of sides) coinbases.add((await side.request('eth_getBlockByNumber', ['latest', false])).miner.toLowerCase());
  compareState({ accounts: list, start, end, fees, coinbases }, mismatches);

  report({ opts, results, list, seconds, mismatches, coinbases, fees });
  if (opts.json) {
    const replacer = (_, v) => (typeof v === 'bigint' ? v.toString() : v);
    writeFileSync(opts.json, JSON.stringify({ seed: opts.seed, count: opts.count, mismatches: mismatches.list, results }, replacer, 2));
  }
  process.exit(mismatches.count === 0 ? 0 : 1);
}

/** Checks both sides can run the workload; returns the fee cap used for every transaction. */
async function preflight(sides, workload, funder, opts) {
  const maxGas = workload.ops.reduce((m, op) => (op.tx.gas > m ? op.tx.gas : m), 0n);
  let feeCap = opts.feeCap;
  const baseFees = [];
  for (const side of sides) {
    const block = await side.request('eth_getBlockByNumber', ['latest', false]);
    if (BigInt(block.gasLimit) < maxGas) throw new RunError(`${side.name}: block gas limit ${BigInt(block.gasLimit)} is below the workload's largest gas limit ${maxGas}`);
    baseFees.push(BigInt(block.baseFeePerGas ?? 0));
  }
  const maxBase = baseFees.reduce((m, v) => (v > m ? v : m), 0n);
  feeCap ??= maxBase * 4n > parseGwei('1') ? maxBase * 4n : parseGwei('1');
  if (feeCap < maxBase * 2n) throw new RunError(`fee cap ${feeCap} is too close to the base fee ${maxBase}`);
  console.log(`  base fees at start: A ${formatGwei(baseFees[0])} gwei, B ${formatGwei(baseFees[1])} gwei`);

  const needed = opts.fundWei * BigInt(workload.actors.length) + parseEther('1');
  for (const side of sides) {
    const balance = BigInt(await side.request('eth_getBalance', [funder.address, 'latest']));
    if (balance < needed) throw new RunError(`${side.name}: funder ${funder.address} has ${formatEther(balance)} ETH, needs ${formatEther(needed)}`);
  }
  return feeCap;
}

/** Every address the workload derives from the seed must be unused on both sides. */
function assertFresh(sides, start, accounts) {
  for (const [s, snapshot] of start.entries()) {
    for (const [address, { role }] of accounts) {
      if (role === 'funder' || role === 'precompile') continue;
      const { balance, nonce, code } = snapshot.get(address);
      if (balance !== 0n || nonce !== 0n || code !== '0x') {
        throw new RunError(`${sides[s].name}: ${role} ${address} is already in use (seed used before on this chain?); pick another seed`);
      }
    }
  }
}

/** Balance, nonce, code and the given storage slots of each address, as a Map. */
async function readAccounts(side, addresses, slotsOf) {
  const entries = await mapLimit(addresses, 8, async (address) => {
    const slots = slotsOf(address);
    const [balance, nonce, code, ...values] = await Promise.all([
      side.request('eth_getBalance', [address, 'latest']),
      side.request('eth_getTransactionCount', [address, 'latest']),
      side.request('eth_getCode', [address, 'latest']),
      ...slots.map((slot) => side.request('eth_getStorageAt', [address, slot, 'latest'])),
    ]);
    const storage = Object.fromEntries(slots.map((slot, i) => [slot, BigInt(values[i])]));
    return [address, { balance: BigInt(balance), nonce: BigInt(nonce), code: code.toLowerCase(), storage }];
  });
  return new Map(entries);
}

/** Signs op for this side's chain id, sends it and waits for the receipt. */
async function runOp(side, op, { feeCap, signer, nonce }) {
  const { tx } = op;
  const common = { chainId: side.chainId, nonce: Number(nonce), to: tx.to ?? undefined, value: tx.value, data: tx.data, gas: tx.gas };
  const request =
    tx.type === 'eip1559'
      ? { ...common, type: 'eip1559', maxFeePerGas: feeCap, maxPriorityFeePerGas: tx.tip < feeCap ? tx.tip : feeCap, accessList: tx.accessList }
      : tx.type === 'eip2930'
        ? { ...common, type: 'eip2930', gasPrice: feeCap, accessList: tx.accessList }
        : { ...common, type: 'legacy', gasPrice: feeCap };
  const raw = await signer.signTransaction(request);
  let hash;
  try {
    hash = await side.request('eth_sendRawTransaction', [raw]);
  } catch (err) {
    return { error: err.message };
  }
  try {
    return { hash, receipt: await side.waitForReceipt(hash) };
  } catch (err) {
    return { hash, error: err.message };
  }
}

function describe(op, outcome) {
  const parts = outcome.map(({ receipt, error }) => (error ? `error ${error}` : `status ${Number(receipt.status)} gas ${BigInt(receipt.gasUsed)} logs ${receipt.logs.length}`));
  return `  #${op.index} [${op.tx.type}] ${op.label}: A ${parts[0]} | B ${parts[1]}`;
}

/** Per precompile: how many calls (via Precompiles.invoke or direct) succeeded / failed on A. */
function precompileTally(results) {
  const tally = new Map();
  const count = (address, ok) => {
    const n = Number(BigInt(address));
    const row = tally.get(n) ?? [0, 0];
    row[ok ? 0 : 1] += 1;
    tally.set(n, row);
  };
  for (const { op, outcome } of results) {
    const receipt = outcome[0].receipt;
    if (!receipt) continue;
    for (const log of receipt.logs) {
      if (log.topics[0]?.toLowerCase() === CALLED_TOPIC) count(`0x${log.topics[1].slice(-40)}`, BigInt(log.data.slice(0, 66)) === 1n);
    }
    if (op.kind === 'precompile' && op.tx.to && BigInt(op.tx.to) <= 9n) count(op.tx.to, BigInt(receipt.status) === 1n);
  }
  return [...tally.entries()].sort(([a], [b]) => a - b).map(([n, [ok, failed]]) => `0x${n.toString(16).padStart(2, '0')} ${ok}/${failed}`);
}

function report({ opts, results, list, seconds, mismatches, coinbases, fees }) {
  const byKind = new Map();
  for (const { op, outcome } of results) {
    const row = byKind.get(op.kind) ?? { total: 0, ok: 0, failed: 0 };
    row.total += 1;
    if (outcome[0].receipt && BigInt(outcome[0].receipt.status) === 1n) row.ok += 1;
    else row.failed += 1;
    byKind.set(op.kind, row);
  }
  const types = {};
  for (const { op } of results) types[op.tx.type] = (types[op.tx.type] ?? 0) + 1;
  const slots = list.reduce((n, a) => n + a.slots.length, 0);
  const roles = {};
  for (const { role } of list) roles[role] = (roles[role] ?? 0) + 1;

  console.log(`\nExecuted ${results.length} transactions on each side in ${seconds}s (${Object.entries(types).map(([t, n]) => `${t} ${n}`).join(', ')})`);
  console.log('  outcomes on A by kind (succeeded / failed):');
  for (const [kind, row] of byKind) console.log(`    ${kind.padEnd(10)} ${String(row.total).padStart(4)}  ${row.ok} / ${row.failed}`);
  const precompiles = precompileTally(results);
  if (precompiles.length > 0) console.log(`  precompile calls on A (succeeded / failed): ${precompiles.join(', ')}`);
  const feeTotals = fees.map((m) => [...m.values()].reduce((x, y) => x + y, 0n));
  console.log(`  fees paid: A ${formatEther(feeTotals[0])} ETH, B ${formatEther(feeTotals[1])} ETH (accounted for, not compared)`);
  console.log(`Compared ${results.length} receipts and ${list.length} accounts (${Object.entries(roles).map(([r, n]) => `${n} ${r}`).join(', ')}) with ${slots} storage slots`);
  if (coinbases.size > 0) console.log(`  balances not compared for fee recipients: ${[...coinbases].join(', ')}`);

  if (mismatches.count === 0) {
    console.log(`\nRESULT: PASS — A and B agree (seed ${opts.seed})`);
    return;
  }
  console.log(`\nRESULT: FAIL — ${mismatches.count} mismatch(es) (seed ${opts.seed}); first ${Math.min(50, mismatches.count)}:`);
  for (const m of mismatches.list.slice(0, 50)) console.log(`  ${m.where}: ${m.field}\n      A: ${m.a}\n      B: ${m.b}`);
}

main().catch((err) => {
  console.error(err instanceof RunError ? `error: ${err.message}` : err);
  process.exit(2);
});
