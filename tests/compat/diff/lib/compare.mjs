// Comparison of the two sides: per-transaction receipts and the final account state.
import { keccak256, stringToHex } from 'viem';

/** topic0 of Factory's `Created(address,bool,bytes32)` (children are found through it). */
export const CREATED_TOPIC = keccak256(stringToHex('Created(address,bool,bytes32)'));

const lower = (v) => (typeof v === 'string' ? v.toLowerCase() : v);
const show = (v) => (typeof v === 'bigint' ? v.toString() : JSON.stringify(v));

export class Mismatches {
  constructor() {
    this.list = [];
  }

  /** Records a difference; `where` names the op ("#12 Storage.write") or the account. */
  add(where, field, a, b) {
    this.list.push({ where, field, a: show(a), b: show(b) });
  }

  /** Adds a mismatch when the values differ. */
  check(where, field, a, b) {
    if (show(a) !== show(b)) this.add(where, field, a, b);
  }

  get count() {
    return this.list.length;
  }
}

/** Fields of a receipt that must agree; base-fee dependent ones (effectiveGasPrice) excluded. */
function receiptView(r) {
  return {
    status: BigInt(r.status),
    gasUsed: BigInt(r.gasUsed),
    type: BigInt(r.type ?? 0),
    to: lower(r.to ?? null),
    contractAddress: lower(r.contractAddress ?? null),
    logsBloom: lower(r.logsBloom),
    logs: r.logs.map((log) => ({ address: lower(log.address), topics: log.topics.map(lower), data: lower(log.data) })),
  };
}

/** Compares the receipts of one op on A and B (and each against the predicted CREATE address). */
export function compareReceipts(op, receiptA, receiptB, mismatches) {
  const where = `#${op.index} ${op.label}`;
  const a = receiptView(receiptA);
  const b = receiptView(receiptB);
  for (const field of ['status', 'gasUsed', 'type', 'to', 'contractAddress', 'logsBloom']) {
    mismatches.check(where, field, a[field], b[field]);
  }
  mismatches.check(where, 'logs.length', a.logs.length, b.logs.length);
  const n = Math.min(a.logs.length, b.logs.length);
  for (let i = 0; i < n; i++) {
    mismatches.check(where, `logs[${i}].address`, a.logs[i].address, b.logs[i].address);
    mismatches.check(where, `logs[${i}].topics`, a.logs[i].topics, b.logs[i].topics);
    mismatches.check(where, `logs[${i}].data`, a.logs[i].data, b.logs[i].data);
  }
  if (op.expectedAddress) {
    for (const [side, view] of [['A', a], ['B', b]]) {
      if (view.status === 1n && view.contractAddress !== op.expectedAddress.toLowerCase()) {
        mismatches.add(where, `contractAddress on ${side} vs predicted CREATE address`, view.contractAddress, op.expectedAddress.toLowerCase());
      }
    }
  }
}

/** Child contracts announced by Factory.Created logs in a receipt. */
export function createdChildren(receipt) {
  return receipt.logs
    .filter((log) => lower(log.topics[0]) === CREATED_TOPIC)
    .map((log) => `0x${log.topics[1].slice(-40)}`.toLowerCase());
}

/**
 * Compares the final state of the tracked accounts.
 * `accounts`: [{ address, role, slots: [hex] }]
 * `start` / `end`: per side, Map address -> { balance, nonce, code?, storage? }
 * `fees`: per side, Map address -> total fees paid (gasUsed * effectiveGasPrice)
 * `coinbases`: addresses whose balance is not compared (fee recipients)
 */
export function compareState({ accounts, start, end, fees, coinbases }, mismatches) {
  for (const { address, role, slots } of accounts) {
    const where = `${role} ${address}`;
    const [sA, sB] = [start[0].get(address), start[1].get(address)];
    const [eA, eB] = [end[0].get(address), end[1].get(address)];

    mismatches.check(where, 'code', eA.code, eB.code);
    mismatches.check(where, 'nonce change', eA.nonce - sA.nonce, eB.nonce - sB.nonce);
    if (!coinbases.has(address)) {
      // balance_end - balance_start + fees paid: equal on both sides even if base fees differ.
      const deltaA = eA.balance - sA.balance + (fees[0].get(address) ?? 0n);
      const deltaB = eB.balance - sB.balance + (fees[1].get(address) ?? 0n);
      mismatches.check(where, 'balance change excluding fees', deltaA, deltaB);
    }
    for (const slot of slots) {
      mismatches.check(where, `storage[${slot}]`, eA.storage[slot], eB.storage[slot]);
    }
  }
}
