// The sync protocol spoken by hand (docs/sync.md, "Endpoints"): what bench/sync uses where a
// figure needs the server without a client store in front of it — pushes of ledger
// transfers and keepstate.put mutations with args encoded as the package encodes them, raw
// pulls and snapshot downloads, poke sockets — and a fetch that counts the bytes it moves.
//
// Pushes and pulls go through node:http with keep-alive connections: on this machine Node's
// fetch spent about 480 µs of CPU per request against node:http's 40-90 µs, and the load
// generator shares the two cores with the server; figure 2's timed loops go leaner still
// (PushConnection). The snapshot is fetched with fetch, as
// the package's client fetches it.
import http from 'node:http';
import net from 'node:net';
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

// Enough connections for figure 2's 10 clients, each with its own.
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One space on one server. */
export class SpaceWire {
  constructor(url, space) {
    this.base = `${url}/v1/spaces/${encodeURIComponent(space)}`;
    this.origin = new URL(url);
  }

  /** POSTs `body` (JSON text) to the space's `what`: the answer's text; throws unless it is a 200. */
  request(what, body) {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: this.origin.hostname,
          port: this.origin.port,
          path: `${new URL(this.base).pathname}/${what}`,
          method: 'POST',
          agent,
          headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (response.statusCode === 200) resolve(text);
            else reject(new Error(`${what} answered ${response.statusCode}: ${text.slice(0, 300)}`));
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  async post(what, body) {
    return JSON.parse(await this.request(what, body));
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
    const text = await this.request('pull', JSON.stringify({ client, since }));
    return { answer: JSON.parse(text), bytes: Buffer.byteLength(text) };
  }

  /** The snapshot file, fetched as a plain download: { bytes (ArrayBuffer), version }. */
  async snapshot() {
    const response = await fetch(`${this.base}/snapshot`, { headers });
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

/**
 * One keep-alive connection that POSTs prepared pushes, one at a time, for figure 2's timed
 * loops: each request is one prebuilt buffer (request line, headers, body) written to the
 * socket, each answer read by its Content-Length. With node:http the load generator spent
 * 87-121 µs of CPU per push of figure 2 here, as much as the server; with this, 22-27 µs.
 * send() checks the status (a 200); what failed in the answer only where the caller parses it.
 */
export class PushConnection {
  constructor(url, space) {
    const origin = new URL(url);
    this.path = `/v1/spaces/${encodeURIComponent(space)}/push`;
    this.host = origin.host;
    this.socket = net.connect(Number(origin.port), origin.hostname);
    this.socket.setNoDelay(true);
    this.pending = null; // { resolve, reject } of the request in flight
    this.buffer = Buffer.alloc(0);
    this.socket.on('data', (chunk) => this.received(chunk));
    this.socket.on('error', (error) => this.pending?.reject(error));
    this.socket.on('close', () => this.pending?.reject(new Error('push connection closed')));
  }

  /** The request's bytes for a push body (JSON text): build them before the clock starts. */
  prepare(body) {
    const head =
      `POST ${this.path} HTTP/1.1\r\nHost: ${this.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    return Buffer.from(head + body, 'utf8');
  }

  /** Sends prepared bytes: resolves with the answer's body text; rejects unless it is a 200. */
  send(request) {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  received(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = this.buffer.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isInteger(length)) return this.pending?.reject(new Error(`an answer without Content-Length: ${head}`));
    if (this.buffer.length < end + 4 + length) return;
    const body = this.buffer.toString('utf8', end + 4, end + 4 + length);
    this.buffer = this.buffer.subarray(end + 4 + length);
    const { resolve, reject } = this.pending;
    this.pending = null;
    const status = Number(head.slice(9, 12));
    if (status === 200) resolve(body);
    else reject(new Error(`push answered ${status}: ${body.slice(0, 300)}`));
  }

  close() {
    this.socket.end();
  }
}

/** Waits for a poke socket's next poke with a version of at least `version`. */
export function nextPoke(socket, version) {
  return new Promise((resolve) => {
    const heard = (data) => {
      const poke = JSON.parse(String(data));
      if (poke.version < version) return;
      socket.off('message', heard);
      resolve(poke);
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
