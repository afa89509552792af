#!/usr/bin/env node
// Runs the compatibility suite against a throwaway anvil (chain id 31337) and stops it.
// By default the suite talks to anvil through a proxy that refuses every non-standard
// method (anvil_*, eth_fillTransaction, ...) with -32601, as a minimal node would, and the
// methods used are summarised at the end.
//   node tools/run-suite.mjs [--direct] [--all-methods] [node --test options...] [test files...]
//     --direct       talk to anvil directly (no proxy)
//     --all-methods  proxy, but forward every method
// ANVIL_ARGS adds anvil options, e.g. ANVIL_ARGS='--hardfork cancun'.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAnvil } from '../lib/foundry.mjs';
import { isStandardMethod, startRecordingProxy } from '../lib/rpc-proxy.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const direct = args.includes('--direct');
const allMethods = args.includes('--all-methods');
const testArgs = args.filter((a) => a !== '--direct' && a !== '--all-methods');
// Test files given on the command line replace the default (every file under test/).
const targets = testArgs.some((a) => !a.startsWith('-')) ? [] : ['test/'];

const anvil = await startAnvil({ chainId: 31337, extraArgs: (process.env.ANVIL_ARGS ?? '').split(/\s+/).filter(Boolean) });
const proxy = direct ? undefined : await startRecordingProxy(anvil.url, anvil.wsUrl, { allow: allMethods ? () => true : isStandardMethod });
const target = proxy ?? anvil;
console.log(`anvil on ${anvil.url}${proxy ? `, suite talks to it through ${allMethods ? 'a recording' : 'a standard-methods-only'} proxy on ${proxy.url}` : ''}`);

let code = 1;
try {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...testArgs, ...targets], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, RPC_URL: target.url, WS_URL: target.wsUrl, CHAIN_ID: '31337' },
  });
  code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
} finally {
  if (proxy) {
    const summary = (refused) => {
      const counts = new Map();
      for (const c of proxy.calls.filter((c) => c.refused === refused)) counts.set(c.method, (counts.get(c.method) ?? 0) + 1);
      return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([m, n]) => `${m} (${n})`).join(', ') || 'none';
    };
    console.log(`\nJSON-RPC methods served: ${summary(false)}`);
    console.log(`Refused as non-standard (clients must cope): ${summary(true)}`);
    await proxy.close();
  }
  await anvil.stop();
}
process.exit(code);
