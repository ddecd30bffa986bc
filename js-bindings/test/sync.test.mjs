// Sync against the real server (the ledger example's, natively, on SQLite): two devices
// converge through it, offline work survives a reopen and is pushed once, a mutation the
// server refuses is reported, a wrong token sees nothing, and what cannot sync is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { openStore } from '../dist/node.js';
import { freshIndexedDB, uniqueName } from './helpers.mjs';
import { startServer } from './support/sync-server.mjs';

const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
assert.ok(existsSync(new URL('client.mjs', ledgerDir)), 'build the wasm-release preset first (make test-js does)');
const { ledgerModule, Ledger } = await import(new URL('client.mjs', ledgerDir));

/** A device: its own IndexedDB (a browser profile), a synced ledger store. */
async function device(server, space, { token = 'secret', indexedDB = freshIndexedDB(), name = uniqueName('device'), websocket, fetch, Socket = WebSocket } = {}) {
  const store = await openStore(name, {
    indexedDB,
    module: ledgerModule,
    autosave: false,
    sync: { url: server.url, space, token, pullIntervalMs: 60_000, WebSocket: Socket, websocket, fetch },
  });
  return { store, ledger: new Ledger(store), indexedDB, name };
}

function entries(store) {
  return store.scan().map(([k, v]) => [k, Buffer.from(v).toString('hex')]);
}

test('two devices converge through the server: puts, deletes and C++ mutators, and the ledger audit holds on both', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const space = uniqueName('space').replace(/[^A-Za-z0-9._-]/g, '-');
  const a = await device(server, space);
  const b = await device(server, space);
  t.after(() => Promise.all([a.store.close(), b.store.close()]));

  await a.ledger.openAccounts(0, 20, 1000);
  a.store.put('note/a', 'from a');
  await a.store.commit();
  await a.store.syncNow();
  assert.equal(a.store.sync.error, null);
  assert.equal(a.store.sync.pending, 0);
  await b.store.syncNow(); // a new device: the space's snapshot
  assert.equal(b.store.sync.error, null);
  assert.deepEqual(entries(b.store), entries(a.store));

  // Both write, concurrently, then both sync twice: the same state everywhere.
  for (let i = 0; i < 10; ++i) {
    await a.ledger.transfer(i, i + 1, 7);
    await b.ledger.transfer(19 - i, i, 3);
  }
  b.store.put('note/b', 'from b');
  assert.equal(b.store.delete('note/a'), true);
  await Promise.all([a.store.commit(), b.store.commit()]);
  const heard = [];
  a.store.watch({ prefix: 'note/' }, (e) => heard.push({ source: e.source, changes: e.changes.map((c) => c.key) }));
  await a.store.syncNow();
  await b.store.syncNow();
  await a.store.syncNow();
  assert.deepEqual(entries(a.store), entries(b.store));
  // A heard B's writes as one 'sync' event, when it adopted them.
  assert.deepEqual(heard, [{ source: 'sync', changes: ['note/a', 'note/b'] }]);
  assert.equal(a.store.getText('note/b'), 'from b');
  assert.equal(a.store.get('note/a'), undefined);
  const [auditA, auditB] = [await a.ledger.audit(), await b.ledger.audit()];
  assert.deepEqual(auditA, auditB);
  assert.equal(auditA.ok, true, JSON.stringify(auditA));
  assert.equal(auditA.transfers, 20);
  assert.equal(a.store.sync.pending, 0);
  assert.equal(b.store.sync.serverVersion, a.store.sync.serverVersion);
});

/** Resolves once `condition()` holds (checked every 5 ms), or fails after `ms`. */
async function until(condition, what, ms = 5000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a poke carries its commit: a device at the version before with nothing pending adopts it without a pull; one with pending work pulls', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const space = uniqueName('space').replace(/[^A-Za-z0-9._-]/g, '-');
  const requests = [];
  const counted = (url, init) => {
    requests.push(String(url).split('/').pop());
    return fetch(url, init);
  };
  const a = await device(server, space);
  const b = await device(server, space, { fetch: counted });
  t.after(() => Promise.all([a.store.close(), b.store.close()]));
  await a.ledger.openAccounts(0, 10, 100);
  await a.store.commit();
  await a.store.syncNow();
  await b.store.syncNow();
  await until(() => b.store.sync.connected && b.store.sync.serverVersion === a.store.sync.serverVersion, "B's poke socket");

  requests.length = 0;
  await a.ledger.transfer(1, 2, 5);
  await a.store.commit(); // its round pushes; the server pokes B with the commit's entries
  await until(() => b.ledger.totals().transfers === 1, 'the transfer on B');
  assert.deepEqual(requests, [], 'B adopted the poke without a request');
  await until(() => b.store.sync.serverVersion === a.store.sync.serverVersion && !b.store.dirty, "B's local commit");
  await a.store.syncNow();
  assert.deepEqual(entries(b.store), entries(a.store));
  assert.equal(b.store.sync.pending, 0);

  // B with a mutation of its own not yet pushed: the patch is not enough (its rebase needs the
  // server's values of the keys it wrote), so B pulls, and pushes its own with the round.
  await b.ledger.transfer(3, 4, 1);
  requests.length = 0;
  await a.ledger.transfer(5, 6, 2);
  await a.store.commit();
  await until(() => requests.includes('pull'), "B's pull");
  await b.store.syncNow();
  await a.store.syncNow();
  assert.deepEqual(entries(b.store), entries(a.store));
  assert.equal(a.ledger.totals().transfers, 3);
  assert.equal((await b.ledger.audit()).ok, true);
});

test('the device that pushed adopts its own commit from the poke: one request per transfer, no pull', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const space = uniqueName('space').replace(/[^A-Za-z0-9._-]/g, '-');
  // A's socket records the versions it was poked with; A's push answers are held until the
  // poke of their version has arrived (the order the server usually sends them in, made sure).
  const poked = new Set();
  class RecordingSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => poked.add(JSON.parse(String(event.data)).version));
    }
  }
  const requests = [];
  const pokeFirst = async (url, init) => {
    const what = String(url).split('/').pop();
    requests.push(what);
    const response = await fetch(url, init);
    if (what === 'push' && response.ok) {
      const { version } = await response.clone().json();
      await until(() => poked.has(version), `the poke of version ${version}`);
    }
    return response;
  };
  const a = await device(server, space, { Socket: RecordingSocket, fetch: pokeFirst });
  const b = await device(server, space);
  t.after(() => Promise.all([a.store.close(), b.store.close()]));
  await a.ledger.openAccounts(0, 10, 100);
  await a.store.commit();
  await a.store.syncNow();
  await until(() => a.store.sync.connected, "A's poke socket");

  for (let i = 0; i < 3; ++i) {
    requests.length = 0;
    const before = a.store.sync.serverVersion;
    await a.ledger.transfer(i, i + 1, 5);
    await a.store.commit(); // its round pushes; the poke of that commit is the pull's answer
    await until(() => a.store.sync.serverVersion > before && a.store.sync.pending === 0 && !a.store.dirty, "A's adopted commit");
    await new Promise((r) => setTimeout(r, 50)); // a round the poke would start wrongly runs now
    assert.deepEqual(requests, ['push'], `transfer ${i + 1}: the push alone, no pull`);
  }
  assert.equal(a.store.sync.error, null);
  await b.store.syncNow();
  assert.deepEqual(entries(a.store), entries(b.store), "A's state is the server's");
  assert.equal(a.ledger.totals().transfers, 3);

  // A with a transfer of its own not pushed when B's commit takes the funds it spends: the
  // poke of B's commit does not follow A's base with nothing pending, and A's push fails on
  // the server: A pulls, drops its transfer and reports it.
  const c = await device(server, space, { websocket: false });
  t.after(() => c.store.close());
  await c.store.syncNow();
  const failures = [];
  a.store.on('sync', (e) => failures.push(...e.failed));
  await a.ledger.transfer(9, 0, 100); // not committed yet: no round of its own
  requests.length = 0;
  await c.ledger.transfer(9, 1, 100);
  await c.store.commit();
  await c.store.syncNow(); // its poke starts A's round
  await a.store.commit();
  await until(() => failures.length === 1 && a.store.sync.pending === 0 && !a.store.dirty, "A's refused transfer");
  assert.ok(requests.includes('pull'), `A pulled: ${requests}`);
  assert.equal(failures[0].name, 'transfer');
  await b.store.syncNow();
  assert.deepEqual(entries(a.store), entries(b.store));
  assert.equal((await a.ledger.audit()).ok, true);
});

test('offline work is kept across a reopen and pushed exactly once when the server is back', async (t) => {
  const first = await startServer();
  const space = 'offline';
  const a = await device(first, space);
  await a.ledger.openAccounts(0, 5, 100);
  await a.store.commit();
  await a.store.syncNow();
  const dir = first.dir;
  await first.stop({ keep: true }); // the server is gone

  await a.ledger.transfer(0, 1, 10);
  a.store.put('offline', 'yes');
  await a.store.commit();
  await a.store.syncNow();
  assert.notEqual(a.store.sync.error, null, 'the round failed: the server is unreachable');
  assert.equal(a.store.sync.pending, 2, 'the transfer and the put wait for the server');
  const mine = entries(a.store);
  await a.store.close();

  // The server is back (same data, another port); the device reopens with its pending work.
  const second = await startServer({ dir });
  t.after(() => second.stop());
  const again = await device(second, space, { indexedDB: a.indexedDB, name: a.name });
  t.after(() => again.store.close());
  assert.deepEqual(entries(again.store), mine, 'the reopened state is the offline state');
  assert.equal(again.store.sync.pending, 2, 'the pending work survived the reopen');
  await again.store.syncNow();
  await again.store.syncNow(); // a second round pushes nothing twice
  assert.equal(again.store.sync.error, null);
  assert.equal(again.store.sync.pending, 0);
  const other = await device(second, space);
  t.after(() => other.store.close());
  await other.store.syncNow();
  assert.deepEqual(entries(other.store), entries(again.store));
  assert.equal((await other.ledger.audit()).transfers, 1, 'the transfer was applied once');
  assert.equal(other.store.getText('offline'), 'yes');
});

test("a new device's snapshot is verified as it downloads: a damaged one is refused with nothing adopted; one overtaken by a local write is downloaded again", async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const space = uniqueName('space').replace(/[^A-Za-z0-9._-]/g, '-');
  const a = await device(server, space);
  t.after(() => a.store.close());
  await a.ledger.openAccounts(0, 50, 100);
  for (let i = 0; i < 20; ++i) await a.ledger.transfer(i, i + 1, 3);
  await a.store.commit();
  await a.store.syncNow();
  assert.equal(a.store.sync.error, null);

  // B's fetch damages the snapshot's body (one byte in its middle) or, once, writes to B's
  // store while the snapshot downloads.
  let damage = true;
  let writeDuring = false;
  let snapshots = 0;
  let b = null;
  const tampering = async (url, init) => {
    const response = await fetch(url, init);
    if (!String(url).includes('/snapshot')) return response;
    ++snapshots;
    if (writeDuring) {
      writeDuring = false;
      b.store.put('note/during', 'written while the snapshot downloaded');
    }
    if (!damage) return response;
    const bytes = new Uint8Array(await response.arrayBuffer());
    bytes[bytes.length >> 1] ^= 0x40;
    return new Response(bytes, { status: response.status, headers: response.headers });
  };
  b = await device(server, space, { fetch: tampering, websocket: false });
  t.after(() => b.store.close());
  await b.store.syncNow(); // (its first round, at open, may have downloaded one already)
  assert.ok(snapshots >= 1);
  assert.equal(b.store.sync.error?.code, 'corruption', String(b.store.sync.error?.message));
  assert.equal(b.store.version, 0, 'nothing of the damaged snapshot was adopted');
  assert.deepEqual(entries(b.store), []);

  damage = false;
  writeDuring = true;
  snapshots = 0;
  await b.store.syncNow();
  assert.equal(b.store.sync.error, null, String(b.store.sync.error?.message));
  assert.ok(snapshots >= 2, `the snapshot overtaken by the local write was downloaded again (${snapshots} downloads)`);
  assert.equal(b.store.getText('note/during'), 'written while the snapshot downloaded');
  await b.store.syncNow();
  assert.equal(b.store.sync.pending, 0, 'the write made during the download was pushed');
  await a.store.syncNow();
  assert.deepEqual(entries(b.store), entries(a.store));
  assert.equal((await b.ledger.audit()).ok, true);
});

test('a mutation the server refuses is reported on the device that made it, and its effects are undone', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const a = await device(server, 'refused');
  // No pokes for B: it must not hear of A's transfer before making its own.
  const b = await device(server, 'refused', { websocket: false });
  t.after(() => Promise.all([a.store.close(), b.store.close()]));
  await a.ledger.openAccounts(0, 2, 10);
  await a.store.commit();
  await a.store.syncNow();
  await b.store.syncNow();
  // Both spend account 0's 10: A's reaches the server first, B's (made on what B knew) fails there.
  await a.ledger.transfer(0, 1, 10);
  await a.store.commit();
  await a.store.syncNow();
  const failures = [];
  b.store.on('sync', (e) => failures.push(...e.failed));
  await b.ledger.transfer(0, 1, 10);
  assert.equal((await b.ledger.audit()).transfers, 1);
  await b.store.commit();
  await b.store.syncNow();
  assert.equal(failures.length, 1, JSON.stringify(failures));
  assert.equal(failures[0].name, 'transfer');
  assert.equal(b.store.sync.pending, 0);
  await a.store.syncNow();
  assert.deepEqual(entries(a.store), entries(b.store));
  assert.equal((await b.ledger.audit()).transfers, 1);
});

test('a wrong token gets 401 and sees nothing of the space', async (t) => {
  const server = await startServer({ tokens: 'team secret\n' });
  t.after(() => server.stop());
  const a = await device(server, 'team');
  t.after(() => a.store.close());
  a.store.put('k', 'v');
  await a.store.commit();
  await a.store.syncNow();
  assert.equal(a.store.sync.error, null);
  const intruder = await device(server, 'team', { token: 'guess' });
  t.after(() => intruder.store.close());
  await intruder.store.syncNow();
  assert.match(intruder.store.sync.error?.message ?? '', /401/);
  assert.deepEqual(entries(intruder.store), []);
});

test('a synced store refuses transaction(fn) and keys its write marks leave no room for', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const a = await device(server, 'refusals');
  t.after(() => a.store.close());
  assert.throws(() => a.store.transaction((tx) => tx.put('k', 'v')), { code: 'unsupported' });
  assert.throws(() => a.store.put('x'.repeat(1023), 'v'), { code: 'invalid-argument' });
  a.store.put('x'.repeat(1022), 'v');
  assert.equal(a.store.scan().length, 1, 'the journal is not among the entries');
});
