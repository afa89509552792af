// Usage: node wait-for-rpc.mjs URL [timeoutSeconds]
// Exits 0 once URL answers eth_chainId, 1 on timeout (used by the shell scripts).
import { rpcRaw } from './foundry.mjs';

const [url, timeoutSeconds = '30'] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutSeconds) * 1000;
while (Date.now() < deadline) {
  try {
    if ((await rpcRaw(url, 'eth_chainId')).result) process.exit(0);
  } catch {
    // not up yet
  }
  await new Promise((r) => setTimeout(r, 100));
}
console.error(`no JSON-RPC answer from ${url} within ${timeoutSeconds}s`);
process.exit(1);
