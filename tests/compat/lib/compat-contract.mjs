// Compiles (with solc-js, at test time) and deploys contracts/Compat.sol.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFiles } from './solc.mjs';

const CONTRACTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'contracts');

let compiled;

/** { abi, bytecode, deployedBytecode } of Compat, compiled once per process. */
export function compat() {
  compiled ??= compileFiles([path.join(CONTRACTS_DIR, 'Compat.sol')]).Compat;
  return compiled;
}

/**
 * Deploys Compat with viem and waits for the receipt.
 * Returns { address, receipt, abi }.
 */
export async function deployCompat({ walletClient, publicClient }, { initial = 0n, value = 0n } = {}) {
  const { abi, bytecode } = compat();
  const hash = await walletClient.deployContract({ abi, bytecode, args: [initial], value });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new Error(`Compat deployment failed: ${JSON.stringify(receipt, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  }
  return { address: receipt.contractAddress, receipt, abi };
}
