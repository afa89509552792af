// A recording JSON-RPC proxy (HTTP and WebSocket on one port) in front of an upstream node.
// It remembers every method called and can refuse methods outside an allow-list with
// JSON-RPC error -32601, to emulate a node that implements only the standard eth_* API.
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * Methods a node that implements only the standard API is assumed to have: the eth_, net_
 * and web3_ namespaces, minus those that need keys held by the node or are client-specific.
 */
const NON_STANDARD = new Set([
  'eth_fillTransaction', // geth-specific; viem tries it first and falls back on -32601
  'eth_sendTransaction',
  'eth_signTransaction',
  'eth_sign',
  'eth_signTypedData_v4',
  'eth_accounts',
]);
export function isStandardMethod(method) {
  return /^(eth|net|web3)_/.test(method) && !NON_STANDARD.has(method);
}

const methodNotFound = (msg) => ({
  jsonrpc: '2.0',
  id: msg?.id ?? null,
  error: { code: -32601, message: `the method ${msg?.method} does not exist/is not available` },
});

/**
 * Starts the proxy on a free loopback port.
 * Options: allow(method) -> boolean (default: everything).
 * Returns { url, wsUrl, calls, reset(), close() }; `calls` lists { method, params, transport, refused }.
 */
export async function startRecordingProxy(upstreamHttp, upstreamWs, { allow = () => true } = {}) {
  const calls = [];
  /** Records the messages and splits them into refused answers and messages to forward. */
  const screen = (messages, transport) => {
    const refused = [];
    const forward = [];
    for (const msg of messages) {
      const isCall = msg && typeof msg.method === 'string';
      const ok = !isCall || allow(msg.method);
      if (isCall) calls.push({ method: msg.method, params: msg.params, transport, refused: !ok });
      (ok ? forward : refused).push(msg);
    }
    return { refused: refused.map(methodNotFound), forward };
  };

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined; // forwarded untouched; the upstream answers with a parse error
    }
    const batch = Array.isArray(body);
    const { refused, forward } = body === undefined ? { refused: [], forward: [] } : screen(batch ? body : [body], batch ? 'http batch' : 'http');

    let answers = [];
    if (body === undefined || forward.length > 0) {
      const upstream = await fetch(upstreamHttp, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? text : JSON.stringify(batch ? forward : forward[0]),
      });
      const answer = await upstream.json();
      answers = Array.isArray(answer) ? answer : [answer];
    }
    const out = [...answers, ...refused];
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(batch ? out : out[0]));
  });

  const wss = new WebSocketServer({ server });
  wss.on('connection', (client) => {
    const upstream = new WebSocket(upstreamWs);
    const queue = [];
    upstream.on('open', () => queue.splice(0).forEach((m) => upstream.send(m)));
    upstream.on('message', (data) => client.send(data.toString()));
    upstream.on('close', () => client.close());
    upstream.on('error', () => client.close());
    client.on('message', (data) => {
      let body;
      try {
        body = JSON.parse(data.toString());
      } catch {
        return;
      }
      const batch = Array.isArray(body);
      const { refused, forward } = screen(batch ? body : [body], 'ws');
      if (refused.length > 0) client.send(JSON.stringify(batch ? refused : refused[0]));
      if (forward.length === 0) return;
      const text = JSON.stringify(batch ? forward : forward[0]);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else queue.push(text);
    });
    client.on('close', () => upstream.close());
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    calls,
    reset: () => calls.splice(0),
    close: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}
