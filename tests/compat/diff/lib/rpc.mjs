// Minimal JSON-RPC client for one endpoint of the differential run.

export class RpcError extends Error {
  constructor(method, error) {
    super(`${method}: ${error.message} (code ${error.code})`);
    this.code = error.code;
    this.data = error.data;
  }
}

export class Endpoint {
  /** @param {string} name "A" or "B" @param {string} url HTTP JSON-RPC URL */
  constructor(name, url) {
    this.name = name;
    this.url = url;
    this.chainId = undefined;
    this.nextId = 1;
  }

  async request(method, params = []) {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
    });
    if (!res.ok) throw new Error(`${this.name} ${method}: HTTP ${res.status}`);
    const body = await res.json();
    if (body.error) throw new RpcError(method, body.error);
    return body.result;
  }

  async connect() {
    this.chainId = Number(await this.request('eth_chainId'));
    return this;
  }

  /** Polls eth_getTransactionReceipt until the receipt exists. */
  async waitForReceipt(hash, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    let delay = 10;
    for (;;) {
      const receipt = await this.request('eth_getTransactionReceipt', [hash]);
      if (receipt) return receipt;
      if (Date.now() > deadline) throw new Error(`${this.name}: no receipt for ${hash} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; keeps order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
