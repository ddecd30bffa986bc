// The Store API against fake-indexeddb: every method, transactions, scans,
// invalid input, closed-store behaviour, commit/reload round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openStore, KeepstateError, ConflictError, CorruptionError, QuotaError, ClosedError, InvalidArgumentError,
} from '../dist/node.js';
import { freshIndexedDB, uniqueName } from './helpers.mjs';

const open = (name, indexedDB, options = {}) => openStore(name, { indexedDB, autosave: false, ...options });

test('a new store is empty at version 0 and clean', async () => {
  const s = await open(uniqueName(), freshIndexedDB());
  assert.equal(s.version, 0);
  assert.equal(s.dirty, false);
  assert.equal(s.get('missing'), undefined);
  assert.deepEqual(s.scan(), []);
  await s.close();
});

test('get/getText/getJSON/has/put/putJSON/delete', async () => {
  const s = await open(uniqueName(), freshIndexedDB());
  s.put('bytes', new Uint8Array([1, 2, 3]));
  s.put('text', 'héllo ✓');
  s.putJSON('json', { a: [1, 'two'], b: null });
  assert.equal(s.dirty, true);
  assert.deepEqual(s.get('bytes'), new Uint8Array([1, 2, 3]));
  assert.equal(s.getText('text'), 'héllo ✓');
  assert.deepEqual(s.getJSON('json'), { a: [1, 'two'], b: null });
  assert.equal(s.getText('nope'), undefined);
  assert.equal(s.getJSON('nope'), undefined);
  assert.equal(s.has('text'), true);
  assert.equal(s.has('nope'), false);
  assert.equal(s.delete('text'), true);
  assert.equal(s.delete('text'), false);
  assert.equal(s.has('text'), false);
  s.put('bytes', 'replaced');
  assert.equal(s.getText('bytes'), 'replaced');
  // A value read is a copy: later writes do not change it.
  const v = s.get('bytes');
  s.put('bytes', 'changed!');
  assert.equal(new TextDecoder().decode(v), 'replaced');
  await s.close();
});

test('scan: prefix, start/end, limit, reverse, and their combination', async () => {
  const s = await open(uniqueName(), freshIndexedDB());
  for (const k of ['a', 'b/1', 'b/2', 'b/3', 'c', 'd']) s.put(k, k.toUpperCase());
  const keys = (o) => s.scan(o).map(([k]) => k);
  assert.deepEqual(keys(), ['a', 'b/1', 'b/2', 'b/3', 'c', 'd']);
  assert.deepEqual(keys({ prefix: 'b/' }), ['b/1', 'b/2', 'b/3']);
  assert.deepEqual(keys({ start: 'b/2', end: 'd' }), ['b/2', 'b/3', 'c']);
  assert.deepEqual(keys({ limit: 2 }), ['a', 'b/1']);
  assert.deepEqual(keys({ reverse: true, limit: 2 }), ['d', 'c']);
  assert.deepEqual(keys({ prefix: 'b/', start: 'b/2' }), ['b/2', 'b/3']);
  assert.deepEqual(keys({ prefix: 'b/', end: 'b/3', reverse: true }), ['b/2', 'b/1']);
  const [[k, v]] = s.scan({ prefix: 'c' });
  assert.equal(k, 'c');
  assert.equal(new TextDecoder().decode(v), 'C');
  await s.close();
});

test('transaction: atomic, read-your-writes, nothing applied when fn throws', async () => {
  const s = await open(uniqueName(), freshIndexedDB());
  s.put('balance', '10');
  const result = s.transaction((tx) => {
    tx.put('balance', String(Number(tx.getText('balance')) - 3));
    tx.putJSON('log', ['-3']);
    assert.equal(tx.getText('balance'), '7');
    assert.equal(tx.has('log'), true);
    assert.deepEqual(tx.scan().map(([k]) => k), ['balance', 'log']);
    assert.equal(tx.delete('log'), true);
    assert.deepEqual(tx.getJSON('log'), undefined);
    return 'done';
  });
  assert.equal(result, 'done');
  assert.equal(s.getText('balance'), '7');
  assert.equal(s.has('log'), false);

  assert.throws(() => s.transaction((tx) => {
    tx.put('balance', '0');
    tx.put('other', 'x');
    throw new Error('business rule');
  }), /business rule/);
  assert.equal(s.getText('balance'), '7');
  assert.equal(s.has('other'), false);

  // A direct write while a transaction is open is refused (the engine's Busy).
  assert.throws(() => s.transaction(() => s.put('x', 'y')), (e) => e instanceof KeepstateError && e.code === 'busy');
  assert.equal(s.has('x'), false);
  // Asynchronous functions are rejected and applied nothing.
  assert.throws(() => s.transaction(async (tx) => tx.put('async', '1')), InvalidArgumentError);
  assert.equal(s.has('async'), false);
  // The tx object is dead after the transaction.
  let leaked;
  s.transaction((tx) => { leaked = tx; });
  assert.throws(() => leaked.put('late', '1'), ClosedError);
  await s.close();
});

test('commit and reopen restore exactly the committed state', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  const big = new Uint8Array(3 << 20).map((_, i) => i * 7);
  s.put('big', big);
  for (let i = 0; i < 1000; ++i) s.putJSON(`item/${String(i).padStart(4, '0')}`, { i });
  const c1 = await s.commit();
  assert.equal(c1.version, 1);
  assert.ok(c1.bytesWritten > big.length, `bytesWritten ${c1.bytesWritten}`);
  assert.ok(c1.ms >= 0);
  assert.equal(s.dirty, false);
  // Nothing to commit: same version, nothing written.
  const again = await s.commit();
  assert.deepEqual([again.version, again.bytesWritten], [1, 0]);
  s.delete('item/0000');
  s.put('later', 'uncommitted');
  const c2 = await s.commit();
  assert.equal(c2.version, 2);
  assert.ok(c2.bytesWritten < c1.bytesWritten / 10, 'the second commit writes only dirty pages');
  s.put('lost', 'never committed');
  await s.reload();
  assert.equal(s.has('lost'), false, 'reload drops uncommitted changes');
  assert.equal(s.dirty, false);
  await s.close();

  const t = await open(name, idb);
  assert.equal(t.version, 2);
  assert.deepEqual(t.get('big'), big);
  assert.equal(t.has('item/0000'), false);
  assert.deepEqual(t.getJSON('item/0999'), { i: 999 });
  assert.equal(t.getText('later'), 'uncommitted');
  assert.equal(t.scan({ prefix: 'item/' }).length, 999);
  await t.close();
});

test("the 'commit' event reports each commit", async () => {
  const s = await open(uniqueName(), freshIndexedDB());
  const seen = [];
  const off = s.on('commit', (e) => seen.push(e.version));
  s.put('a', '1');
  await s.commit();
  off();
  s.put('a', '2');
  await s.commit();
  assert.deepEqual(seen, [1]);
  assert.throws(() => s.on('nonsense', () => {}), InvalidArgumentError);
  await s.close();
});

test('commits never overlap: one requested during another runs after it with everything dirtied meanwhile', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  s.put('k1', 'v1');
  const first = s.commit();
  s.put('k2', 'v2'); // while the first commit is in flight
  const second = s.commit();
  const third = s.commit();
  const [r1, r2, r3] = await Promise.all([first, second, third]);
  assert.deepEqual([r1.version, r2.version, r3.version], [1, 2, 2]);
  assert.equal(r3.bytesWritten, 0);
  await s.close();
  const t = await open(name, idb);
  assert.equal(t.getText('k2'), 'v2');
  await t.close();
});

test('invalid keys, values and options are InvalidArgumentError', async () => {
  const idb = freshIndexedDB();
  const s = await open(uniqueName(), idb);
  assert.throws(() => s.put('', 'x'), InvalidArgumentError);
  assert.throws(() => s.put('k'.repeat(1025), 'x'), InvalidArgumentError);
  assert.throws(() => s.put('é'.repeat(513), 'x'), InvalidArgumentError, '1026 UTF-8 bytes');
  s.put('k'.repeat(1024), 'max key');
  assert.throws(() => s.get(''), InvalidArgumentError);
  assert.throws(() => s.get(42), InvalidArgumentError);
  assert.throws(() => s.put('k', 42), InvalidArgumentError);
  assert.throws(() => s.put('k', new Uint8Array((16 << 20) + 1)), InvalidArgumentError);
  s.put('max', new Uint8Array(16 << 20));
  assert.equal(s.get('max').length, 16 << 20);
  assert.throws(() => s.putJSON('k', undefined), InvalidArgumentError);
  assert.throws(() => s.scan({ limit: -1 }), InvalidArgumentError);
  assert.throws(() => s.scan({ prefix: 3 }), InvalidArgumentError);
  await s.close();
  await assert.rejects(openStore('', { indexedDB: idb }), InvalidArgumentError);
  await assert.rejects(openStore(uniqueName(), { indexedDB: idb, retain: 0 }), InvalidArgumentError);
  await assert.rejects(openStore(uniqueName(), { indexedDB: idb, durability: 'eventual' }), InvalidArgumentError);
  await assert.rejects(openStore(uniqueName(), { indexedDB: idb, autosave: -5 }), InvalidArgumentError);
  await assert.rejects(openStore(uniqueName(), { indexedDB: idb, pageSize: 1000 }), InvalidArgumentError);
  await assert.rejects(openStore(uniqueName(), {}).then(() => {}, (e) => { throw e; }), InvalidArgumentError,
    'no globalThis.indexedDB in Node');
});

test('pageSize applies to a new store; an existing store keeps its own', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, { pageSize: 16384 });
  s.put('a', 'x');
  const { bytesWritten } = await s.commit();
  assert.ok(bytesWritten >= 2 * 16384, `${bytesWritten} bytes: superblock + leaf of 16 KiB`);
  await s.close();
  const t = await open(name, idb, { pageSize: 4096 });
  assert.equal(t.getText('a'), 'x');
  t.put('b', 'y');
  await t.commit();
  await t.close();
});

test('a closed store throws ClosedError from every method', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  s.put('pending', 'committed by close');
  await s.close();
  assert.equal(s.name, name);
  assert.equal(s.version, 1, 'version keeps the last committed version');
  assert.equal(s.dirty, false);
  for (const call of [
    () => s.get('a'), () => s.getText('a'), () => s.getJSON('a'), () => s.has('a'), () => s.put('a', 'b'),
    () => s.putJSON('a', 1), () => s.delete('a'), () => s.scan(), () => s.transaction(() => {}),
    () => s.commit(), () => s.reload(),
  ]) {
    assert.throws(call, ClosedError);
  }
  await s.close(); // idempotent: closing a closed store resolves
  const t = await open(name, idb);
  assert.equal(t.getText('pending'), 'committed by close', 'close() commits pending changes first');
  await t.close();
});

test('error classes: stable codes, one hierarchy', () => {
  const cases = [
    [new ConflictError('c', 1, 2), 'conflict'],
    [new CorruptionError('c'), 'corruption'],
    [new QuotaError('q'), 'quota'],
    [new ClosedError('c'), 'closed'],
    [new InvalidArgumentError('i'), 'invalid-argument'],
  ];
  for (const [error, code] of cases) {
    assert.ok(error instanceof KeepstateError && error instanceof Error);
    assert.equal(error.code, code);
    assert.equal(error.name, error.constructor.name);
  }
  assert.equal(cases[0][0].expectedVersion, 1);
  assert.equal(cases[0][0].actualVersion, 2);
});

test('storage(): where there is no navigator.storage.estimate (Node), not persisted and no estimate; persist is validated', async () => {
  const s = await openStore(uniqueName(), { indexedDB: freshIndexedDB(), autosave: false, persist: true });
  const health = await s.storage();
  assert.equal(typeof health.persisted, 'boolean');
  if (globalThis.navigator?.storage === undefined) assert.deepEqual(health, { persisted: false, usage: undefined, quota: undefined });
  await s.close();
  await assert.rejects(s.storage(), ClosedError);
  await assert.rejects(openStore(uniqueName(), { storage: 'memory', persist: 'yes' }), InvalidArgumentError);
});
