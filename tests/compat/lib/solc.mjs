// Compiles Solidity with solc-js (the pinned `solc` package, no native compiler needed).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import solc from 'solc';

/**
 * EVM version targeted by the compiler. Kept conservative so the bytecode runs on
 * any node that implements Cancun; override with SOLC_EVM_VERSION.
 */
export const EVM_VERSION = process.env.SOLC_EVM_VERSION || 'cancun';

/**
 * Compiles the given .sol files (absolute paths) and returns
 * { [contractName]: { abi, bytecode, deployedBytecode } } with 0x-prefixed hex.
 * Throws with the compiler's messages on any error.
 */
export function compileFiles(files, { optimize = true } = {}) {
  const sources = {};
  for (const file of files) sources[path.basename(file)] = { content: readFileSync(file, 'utf8') };
  return compileSources(sources, { optimize });
}

/** Same as compileFiles, from in-memory sources: { 'Name.sol': 'source text' }. */
export function compileSources(sourceTexts, { optimize = true } = {}) {
  const sources = {};
  for (const [name, src] of Object.entries(sourceTexts)) {
    sources[name] = typeof src === 'string' ? { content: src } : src;
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: optimize, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }

  const contracts = {};
  for (const fileContracts of Object.values(output.contracts)) {
    for (const [name, c] of Object.entries(fileContracts)) {
      contracts[name] = {
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
    }
  }
  return contracts;
}

/** The solc-js compiler version string, e.g. "0.8.37+commit...". */
export const SOLC_VERSION = solc.version();
