// IndexedDB behaviour: optimistic concurrency between stores, corruption
// fallback, quota, garbage collection, other-tab announcements, autosave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ConflictError, CorruptionError, QuotaError } from '../dist/node.js';
import {
  damageEveryManifest, dumpRecords, freshIndexedDB, nextEvent, quotaIndexedDB, storedBytes, tamper, uniqueName,
} from './helpers.mjs';

const open = (name, indexedDB, options = {}) => openStore(name, { indexedDB, autosave: false, ...options });

test("onConflict 'reject': two stores on one IndexedDB: the second commit is a ConflictError and writes nothing", async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const a = await open(name, idb, { onConflict: 'reject', follow: false });
  const b = await open(name, idb, { onConflict: 'reject', follow: false });
  a.put('who', 'a');
  await a.commit();
  const before = await dumpRecords(idb, name);

  b.put('who', 'b');
  const conflictEvent = nextEvent(b, 'conflict');
  const error = await b.commit().then(() => assert.fail('commit should conflict'), (e) => e);
  assert.ok(error instanceof ConflictError, String(error));
  assert.equal(error.code, 'conflict');
  assert.equal(error.expectedVersion, 0);
  assert.equal(error.actualVersion, 1);
  assert.equal(await conflictEvent, error);
  assert.equal(b.dirty, true, 'the local state stays dirty');
  assert.equal(b.getText('who'), 'b');
  assert.equal(b.version, 0);
  assert.deepEqual(await dumpRecords(idb, name), before, 'nothing was written');

  // Retrying conflicts again; reload takes the winner's version.
  await assert.rejects(b.commit(), ConflictError);
  await b.reload();
  assert.equal(b.version, 1);
  assert.equal(b.getText('who'), 'a');
  b.put('who', 'b again');
  assert.equal((await b.commit()).version, 2);
  // Now a is behind.
  a.put('x', '1');
  await assert.rejects(a.commit(), ConflictError);
  await a.close().catch((e) => assert.ok(e instanceof ConflictError));
  await a.reload();
  await a.close();
  await b.close();
});

test("a commit is announced to other stores of the same name ('remote-commit')", async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const a = await open(name, idb);
  const b = await open(name, idb);
  const heardByB = nextEvent(b, 'remote-commit');
  let heardByA = false;
  a.on('remote-commit', () => { heardByA = true; });
  a.put('k', 'v');
  await a.commit();
  assert.deepEqual(await heardByB, { version: 1 });
  assert.equal(heardByA, false, 'a store does not hear its own commits');
  await b.reload();
  assert.equal(b.getText('k'), 'v');
  await a.close();
  await b.close();
});

test('corruption: a tampered newest version falls back to the previous one and says so', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  s.put('k', 'version 1');
  await s.commit();
  s.put('k', 'version 2');
  await s.commit();
  await s.close();
  // Flip one byte in every pack written by version 2.
  await tamper(idb, name, (kind, key, bytes) => {
    if (kind !== 'packs' || !key.startsWith('0000000000000002-')) return undefined;
    const copy = new Uint8Array(bytes);
    copy[100] ^= 0xff;
    return copy;
  });
  const t = await open(name, idb);
  const event = await nextEvent(t, 'corruption');
  assert.equal(t.version, 1);
  assert.equal(t.getText('k'), 'version 1');
  assert.equal(event.restoredVersion, 1);
  assert.equal(event.fresh, false);
  assert.equal(event.failures[0].version, 2);
  assert.equal(event.failures[0].code, 'corruption');
  assert.match(event.error.message, /fell back to version 1/);
  assert.equal(event.error.code, 'corruption');
  // The store goes on: the next commit supersedes the corrupt version.
  t.put('k', 'version 3');
  assert.equal((await t.commit()).version, 3);
  await t.close();
  const u = await open(name, idb);
  let again = false;
  u.on('corruption', () => { again = true; });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(again, false);
  assert.equal(u.getText('k'), 'version 3');
  await u.close();
});

test('corruption: when nothing verifies the open is refused with what failed, nothing changes; onAllDamaged: open opens empty on a fresh line', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  s.put('k', 'v1');
  await s.commit();
  s.put('k', 'v2');
  await s.commit();
  await s.close();
  await damageEveryManifest(idb, name);
  const before = await dumpRecords(idb, name);
  const refused = await open(name, idb).catch((e) => e);
  assert.ok(refused instanceof CorruptionError, String(refused));
  assert.match(refused.message, /every retained version is damaged; nothing was changed: \[version 2: .*\] \[version 1: /);
  assert.deepEqual(await dumpRecords(idb, name), before, 'the records are left untouched');
  const t = await open(name, idb, { onAllDamaged: 'open' });
  const event = await nextEvent(t, 'corruption');
  assert.equal(event.fresh, true);
  assert.match(event.error.message, /fresh version line/);
  assert.equal(t.version, 0);
  assert.equal(t.has('k'), false);
  t.put('k', 'new line');
  assert.equal((await t.commit()).version, 1);
  await t.close();
  const records = await dumpRecords(idb, name);
  assert.deepEqual([...records.manifests.keys()], ['0000000000000001'], 'the unreadable records were replaced');
  const u = await open(name, idb);
  assert.equal(u.getText('k'), 'new line');
  await u.close();
});

test('quota: QuotaExceededError becomes QuotaError, the previous version stays, the state stays dirty', async () => {
  const state = { full: false };
  const idb = quotaIndexedDB(state);
  const name = uniqueName();
  const s = await open(name, idb);
  s.put('k', 'committed');
  await s.commit();
  s.put('k', 'too much');
  state.full = true;
  const error = await s.commit().then(() => assert.fail('commit should fail'), (e) => e);
  assert.ok(error instanceof QuotaError, String(error));
  assert.equal(error.code, 'quota');
  assert.equal(s.dirty, true);
  assert.equal(s.version, 1);
  assert.equal(s.getText('k'), 'too much');
  const t = await open(name, idb);
  assert.equal(t.getText('k'), 'committed', 'the previous version is intact');
  await t.close();
  state.full = false;
  assert.equal((await s.commit()).version, 2, 'the next commit writes everything still dirty');
  await s.close();
  const u = await open(name, idb);
  assert.equal(u.getText('k'), 'too much');
  await u.close();
});

test('garbage collection keeps stored bytes bounded over 500 commits', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, { retain: 2 });
  for (let i = 0; i < 200; ++i) s.put(`row/${i}`, `initial ${i}`.padEnd(200, '.'));
  await s.commit();
  let at100 = 0;
  for (let c = 1; c <= 500; ++c) {
    // Each commit rewrites a few rows scattered over the tree.
    for (let j = 0; j < 5; ++j) s.put(`row/${(c * 37 + j * 41) % 200}`, `commit ${c}`.padEnd(200, '.'));
    await s.commit();
    if (c === 100) at100 = storedBytes(await dumpRecords(idb, name));
  }
  const records = await dumpRecords(idb, name);
  const at500 = storedBytes(records);
  assert.equal(s.version, 501);
  assert.equal(records.head.size, 1);
  // retain: 2 keeps the two newest versions' manifests and, since snapshot
  // format 2, the older manifests their deltas are written over (a chain is
  // at most about log2(pages) + 2 long, and the two share their base): a
  // handful, never one per commit.
  assert.ok(records.manifests.size >= 2 && records.manifests.size <= 8,
    `retain: 2 keeps the two newest versions and their chains: ${records.manifests.size} manifests`);
  assert.ok(records.packs.size <= 64, `${records.packs.size} packs`);
  assert.ok(at500 <= at100 * 1.5, `stored bytes after 100 commits ${at100}, after 500 ${at500}`);
  await s.close();
  const t = await open(name, idb);
  assert.equal(t.getText('row/0').startsWith('commit'), true);
  await t.close();
});

test('autosave: commits once, the delay after the first change, and again after a later change', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await openStore(name, { indexedDB: idb, autosave: 30 });
  const committed = nextEvent(s, 'commit', 3000);
  const t0 = performance.now();
  s.put('a', '1');
  s.put('b', '2');
  const result = await committed;
  const elapsed = performance.now() - t0;
  assert.equal(result.version, 1);
  assert.ok(elapsed >= 25, `autosaved after ${elapsed.toFixed(1)} ms`);
  assert.equal(s.dirty, false);
  // A later change arms it again.
  const second = nextEvent(s, 'commit', 3000);
  s.put('c', '3');
  assert.equal((await second).version, 2);
  await s.close();
  const t = await open(name, idb);
  assert.equal(t.getText('c'), '3');
  await t.close();
});

test('autosave: false never commits on its own', async () => {
  const s = await openStore(uniqueName(), { indexedDB: freshIndexedDB(), autosave: false });
  let commits = 0;
  s.on('commit', () => ++commits);
  s.put('a', '1');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(commits, 0);
  assert.equal(s.dirty, true);
  await s.close();
});

test("onConflict 'reject': autosave reports a conflict as 'conflict' and keeps the state dirty", async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const a = await open(name, idb);
  const b = await openStore(name, { indexedDB: idb, autosave: 10, onConflict: 'reject', follow: false });
  a.put('k', 'a');
  await a.commit();
  const conflict = nextEvent(b, 'conflict', 3000);
  b.put('k', 'b');
  const error = await conflict;
  assert.ok(error instanceof ConflictError);
  assert.equal(b.dirty, true);
  await b.reload();
  await a.close();
  await b.close();
});

test('restore reads only the packs the restored version needs', async () => {
  const { IDBObjectStore } = await import('fake-indexeddb');
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  // Version 1: 6 MiB of values. Version 2 rewrites all of them: version 1's
  // packs stay stored (it is retained for fallback) but version 2 needs none.
  const value = (round, i) => new Uint8Array(64 << 10).fill((round * 31 + i) & 255);
  for (let i = 0; i < 96; ++i) s.put(`v/${i}`, value(1, i));
  await s.commit();
  for (let i = 0; i < 96; ++i) s.put(`v/${i}`, value(2, i));
  await s.commit();
  await s.close();
  const stored = await dumpRecords(idb, name);
  let storedPackBytes = 0;
  for (const bytes of stored.packs.values()) storedPackBytes += bytes.length;

  // Count what restore reads from the packs object store.
  const calls = { get: 0, getAll: 0, bytes: 0 };
  const { get, getAll } = IDBObjectStore.prototype;
  IDBObjectStore.prototype.get = function (key) {
    const req = get.call(this, key);
    if (this.name === 'packs') {
      calls.get += 1;
      req.addEventListener('success', () => { calls.bytes += req.result?.size ?? req.result?.length ?? 0; });
    }
    return req;
  };
  IDBObjectStore.prototype.getAll = function (...args) {
    if (this.name === 'packs') calls.getAll += 1;
    return getAll.apply(this, args);
  };
  let t;
  try {
    t = await open(name, idb);
  } finally {
    IDBObjectStore.prototype.get = get;
    IDBObjectStore.prototype.getAll = getAll;
  }
  assert.equal(t.version, 2);
  for (let i = 0; i < 96; i += 19) assert.deepEqual(t.get(`v/${i}`), value(2, i));
  assert.equal(calls.getAll, 0, 'pack bytes are never read in bulk');
  assert.ok(calls.get >= 1, 'packs are read by key');
  assert.ok(calls.bytes < storedPackBytes * 0.7,
    `read ${calls.bytes} of ${storedPackBytes} stored pack bytes: the retained older version's are not read`);
  await t.close();
});
