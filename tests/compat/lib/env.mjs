// Shared configuration and client factories for the compatibility suite.
// The node under test is given by RPC_URL (http), WS_URL (ws) and CHAIN_ID.
import { JsonRpcProvider, Wallet, WebSocketProvider } from 'ethers';
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  toHex,
  webSocket,
} from 'viem';
import { generatePrivateKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts';

function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required (see tests/compat/README.md)`);
  return value;
}

export const RPC_URL = requireEnv('RPC_URL');
export const WS_URL = requireEnv('WS_URL');
export const CHAIN_ID = Number(requireEnv('CHAIN_ID'));

/** Per-test timeout (ms); generous because a node under development may be slow. */
export const TIMEOUT = Number(process.env.TEST_TIMEOUT_MS || 120_000);

/** Mnemonic of the funded dev accounts (same as anvil's defaults). */
export const MNEMONIC = 'test test test test test test test test test test test junk';

/**
 * Which dev account (m/44'/60'/0'/0/i) each test file sends from. Every file owns its
 * account, so files can run in parallel without nonce races.
 */
export const ACCOUNT = Object.freeze({
  readOnly: 0, // never sends; used for balance reads
  transferViem: 1,
  transferEthers: 2,
  transferCast: 3,
  txTypes: 4,
  contract: 5,
  logs: 6,
  ws: 7,
  blocks: 8,
  spare: 9, // used as a foreign `from` in eth_call; sends only to fund subnets.test.mjs's fresh accounts
});

/** Dev account i as a viem local account, with its private key attached. */
export function devAccount(index) {
  const account = mnemonicToAccount(MNEMONIC, { addressIndex: index });
  return Object.assign(account, { privateKey: toHex(account.getHdKey().privateKey) });
}

/** A fresh, never-used (unfunded) viem account with a random key. */
export function freshAccount() {
  return privateKeyToAccount(generatePrivateKey());
}

/** A fresh, never-used address. */
export function freshAddress() {
  return freshAccount().address;
}

export const chain = defineChain({
  id: CHAIN_ID,
  name: 'node-under-test',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [RPC_URL], webSocket: [WS_URL] } },
});

/** viem public + wallet clients over HTTP, for dev account `index` or a given viem account. */
export function viemClients(indexOrAccount) {
  const account = typeof indexOrAccount === 'number' ? devAccount(indexOrAccount) : indexOrAccount;
  const transport = http(RPC_URL, { timeout: 30_000, retryCount: 0 });
  return {
    account,
    publicClient: createPublicClient({ chain, transport, pollingInterval: 200 }),
    walletClient: createWalletClient({ account, chain, transport, pollingInterval: 200 }),
  };
}

/** viem public client over WebSocket. Call `closeViemWs(client)` when done. */
export function viemWsClient() {
  return createPublicClient({
    chain,
    transport: webSocket(WS_URL, { timeout: 30_000, retryCount: 0, reconnect: false, keepAlive: false }),
    pollingInterval: 200,
  });
}

/** Closes the socket behind a viem WebSocket client so the process can exit. */
export async function closeViemWs(client) {
  const rpcClient = await client.transport.getRpcClient();
  rpcClient.close();
}

/** ethers JSON-RPC provider (checks the node's chain id) and a wallet for dev account `index`. */
export function ethersClients(index) {
  // cacheTimeout -1: never serve a repeated request (e.g. getBalance) from ethers' cache.
  const provider = new JsonRpcProvider(RPC_URL, CHAIN_ID, { pollingInterval: 250, cacheTimeout: -1 });
  const wallet = new Wallet(devAccount(index).privateKey, provider);
  return { provider, wallet };
}

/**
 * ethers WebSocket provider. Close it with `closeEthersWs(provider)`: ethers sends
 * eth_unsubscribe without awaiting it, so requests still in flight are tracked here and
 * awaited before the socket is destroyed.
 */
export function ethersWsProvider() {
  const provider = new WebSocketProvider(WS_URL, CHAIN_ID);
  const inflight = new Set();
  const send = provider.send.bind(provider);
  provider.send = (method, params) => {
    const request = send(method, params);
    inflight.add(request);
    request.then(() => inflight.delete(request), () => inflight.delete(request));
    return request;
  };
  provider.inflight = inflight;
  return provider;
}

/** Removes all listeners, waits for the resulting eth_unsubscribe calls, then destroys. */
export async function closeEthersWs(provider) {
  await provider.removeAllListeners();
  await new Promise((r) => setTimeout(r, 50)); // let ethers issue its unsubscribe requests
  while (provider.inflight.size > 0) await Promise.allSettled([...provider.inflight]);
  await provider.destroy();
}

/** Total fee a receipt paid (gasUsed * effectiveGasPrice). Works for viem and ethers receipts. */
export function feeOf(receipt) {
  const price = receipt.effectiveGasPrice ?? receipt.gasPrice;
  return BigInt(receipt.gasUsed) * BigInt(price);
}

/** Resolves `promise`, or rejects after `ms` with a message naming what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Subscriptions and filters are installed asynchronously, so an event emitted right after
 * `watch...()` may predate them. This calls `emit(i)` (e.g. sends a transaction and returns
 * its receipt) until `received` settles, and returns { value, sent }: what `received`
 * resolved to and the results of every `emit` call, so the caller can match them.
 */
export async function emitUntilReceived(received, emit, { attempts = 10, intervalMs = 1_000, timeoutMs = 30_000 } = {}) {
  let settled = false;
  const observed = received.finally(() => { settled = true; });
  observed.catch(() => {}); // rejection is reported by the await below
  const sent = [];
  for (let i = 0; i < attempts && !settled; i++) {
    sent.push(await emit(i));
    await Promise.race([observed.catch(() => {}), new Promise((r) => setTimeout(r, intervalMs))]);
  }
  const value = await withTimeout(observed, timeoutMs, 'the subscribed event');
  return { value, sent };
}
