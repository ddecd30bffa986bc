// The sync protocol spoken by hand (docs/sync.md, "Endpoints"): what bench/sync uses where a
// figure needs the server without a client store in front of it — pushes of ledger
// transfers and keepstate.put mutations with args encoded as the package encodes them, raw
// pulls and snapshot downloads, poke sockets — and a fetch that counts the bytes it moves.
import WebSocket from 'ws';

export const TOKEN = 'secret';
const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` };

/** A client id as the protocol wants it ([A-Za-z0-9_-]{8,64}), unique in this process. */
let clients = 0;
export function clientId(prefix) {
  return `${prefix}-${process.pid}-${++clients}`.replace(/[^A-Za-z0-9_-]/g, '-').padEnd(8, '0');
}

/** keepstate.put's args (docs/sync.md, "What syncs"): u32 LE key length, key bytes, value bytes. */
export function putArgs(key, value) {
  const k = Buffer.from(key, 'utf8');
  const args = Buffer.alloc(4 + k.length + value.length);
  args.writeUInt32LE(k.length, 0);
  k.copy(args, 4);
  args.set(value, 4 + k.length);
  return args;
}

/** A mutation as a push carries it. */
export function mutation(id, name, args) {
  return { id, name, args: Buffer.from(args).toString('base64') };
}

/** The JSON body of a push: build it ahead of a timed loop so the loop times the server. */
export function pushBody(client, mutations) {
  return JSON.stringify({ client, mutations });
}

/** One space on one server, spoken to with `fetch` (default: Node's). */
export class SpaceWire {
  constructor(url, space, { fetch: f = globalThis.fetch } = {}) {
    this.base = `${url}/v1/spaces/${encodeURIComponent(space)}`;
    this.fetch = f;
  }

  async post(what, body) {
    const response = await this.fetch(`${this.base}/${what}`, { method: 'POST', headers, body });
    const text = await response.text();
    if (!response.ok) throw new Error(`${what} answered ${response.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  /** Pushes `mutations` (or a body from pushBody); throws unless every one was processed and none failed. */
  async push(client, mutations) {
    const body = typeof mutations === 'string' ? mutations : pushBody(client, mutations);
    const answer = await this.post('push', body);
    if (answer.failed.length !== 0) throw new Error(`push: the server refused ${JSON.stringify(answer.failed[0])}`);
    return answer;
  }

  /** { answer, bytes }: the pull's answer and its body's length. */
  async pull(client, since) {
    const response = await this.fetch(`${this.base}/pull`, { method: 'POST', headers, body: JSON.stringify({ client, since }) });
    const text = await response.text();
    if (!response.ok) throw new Error(`pull answered ${response.status}: ${text.slice(0, 300)}`);
    return { answer: JSON.parse(text), bytes: Buffer.byteLength(text) };
  }

  /** The snapshot file, fetched as a plain download: { bytes (ArrayBuffer), version }. */
  async snapshot() {
    const response = await this.fetch(`${this.base}/snapshot`, { headers });
    if (!response.ok) throw new Error(`snapshot answered ${response.status}`);
    const bytes = await response.arrayBuffer();
    return { bytes, version: Number(response.headers.get('Keepstate-Version')) };
  }

  /** A poke socket, open and authorized: resolves with { socket, version } at the first poke. */
  poke() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${this.base.replace(/^http/, 'ws')}/poke`);
      socket.once('open', () => socket.send(JSON.stringify({ token: TOKEN })));
      socket.once('message', (data) => resolve({ socket, version: JSON.parse(String(data)).version }));
      socket.once('error', reject);
      socket.once('close', (code) => reject(new Error(`the poke socket closed (${code}) before its first poke`)));
    });
  }
}

/** Waits for a poke socket's next poke with a version of at least `version`. */
export function nextPoke(socket, version) {
  return new Promise((resolve) => {
    const heard = (data) => {
      const v = JSON.parse(String(data)).version;
      if (v < version) return;
      socket.off('message', heard);
      resolve(v);
    };
    socket.on('message', heard);
  });
}

/**
 * A fetch that counts body bytes both ways (headers not included) and can be switched off
 * (`offline`: rejects as fetch does when the server is unreachable). Answers are read whole
 * and handed on as a new Response with the same status and headers.
 */
export function countingFetch() {
  const f = async (input, init = {}) => {
    if (f.offline) throw new TypeError('fetch failed (offline)');
    if (typeof init.body === 'string') f.sent += Buffer.byteLength(init.body);
    else if (init.body) f.sent += init.body.byteLength;
    const response = await fetch(input, init);
    const body = await response.arrayBuffer();
    f.received += body.byteLength;
    return new Response(body, { status: response.status, headers: response.headers });
  };
  f.sent = 0;
  f.received = 0;
  f.offline = false;
  f.reset = () => {
    f.sent = 0;
    f.received = 0;
  };
  return f;
}
