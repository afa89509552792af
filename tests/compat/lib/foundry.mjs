// Helpers around the foundry binaries (anvil, cast) shipped in node_modules.
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
const execFileAsync = promisify(execFile);

/** Absolute path of a binary shipped by an @foundry-rs/<name>-linux-amd64 package. */
function foundryBinary(name) {
  const pkgJson = require.resolve(`@foundry-rs/${name}-linux-amd64/package.json`);
  return path.join(path.dirname(pkgJson), 'bin', name);
}

export const ANVIL_BIN = foundryBinary('anvil');
export const CAST_BIN = foundryBinary('cast');

/**
 * Runs `cast <args...>` and returns its trimmed stdout.
 * On a non-zero exit the thrown error carries `stdout` and `stderr`.
 */
export async function cast(args, { timeoutMs = 60_000 } = {}) {
  const { stdout } = await execFileAsync(CAST_BIN, args, {
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
    // Silence foundry's warning about nightly builds on stderr.
    env: { ...process.env, FOUNDRY_DISABLE_NIGHTLY_WARNING: '1' },
  });
  return stdout.trim();
}

/** Asks the OS for a currently free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends one JSON-RPC request over HTTP; resolves to the raw response object. */
export async function rpcRaw(url, method, params = []) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return res.json();
}

/**
 * Starts anvil on a free loopback port and waits until it answers eth_chainId.
 * Returns { url, wsUrl, port, stop }.
 */
export async function startAnvil({ chainId = 31337, extraArgs = [], readyTimeoutMs = 30_000 } = {}) {
  const port = await freePort();
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), ...extraArgs];
  const child = spawn(ANVIL_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((resolve) => child.once('exit', resolve));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited early (code ${child.exitCode}): ${stderr}`);
    try {
      const res = await rpcRaw(url, 'eth_chainId');
      if (Number(res.result) === chainId) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`anvil did not become ready on ${url}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
