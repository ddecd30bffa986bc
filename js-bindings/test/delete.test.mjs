// deleteStore (issue 23, finding 9): a store can be deleted; open stores of
// that name close; the next open is new and empty, with no data-loss report;
// a kill in the middle leaves the store or nothing, never a store reported lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, deleteStore, ClosedError, InvalidArgumentError } from '../dist/node.js';
import { copyFiles, freshIndexedDB, memoryDirectory, nextEvent, uniqueName } from './helpers.mjs';

const open = (name, options) => openStore(name, { autosave: false, ...options });

test('deleteStore removes the records, the OPFS copy and stashes; open stores close; the next open is new, with no data-loss', async () => {
  const state = {};
  const opts = { indexedDB: freshIndexedDB(), opfs: memoryDirectory(state) };
  const name = uniqueName('del');
  const a = await open(name, opts);
  const b = await open(name, opts);
  a.put('k', 'v');
  await a.commit();
  assert.ok(copyFiles(state, name).length > 0, 'the copy holds the commit');
  const closed = nextEvent(b, 'deleted');
  b.put('uncommitted', 'x');
  await deleteStore(name, opts);
  assert.deepEqual(await closed, { name });
  assert.throws(() => b.get('k'), (e) => e instanceof ClosedError && /was deleted/.test(e.message));
  assert.throws(() => a.put('k', 'v2'), ClosedError, 'the store of this realm that committed is closed too');
  await a.close(); // closing a deleted store resolves
  assert.deepEqual(copyFiles(state, name), [], 'no copy, no marker left');
  const fresh = await open(name, opts);
  let loss = null;
  fresh.on('data-loss', (e) => (loss = e));
  fresh.on('corruption', (e) => (loss = e));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fresh.version, 0);
  assert.deepEqual(fresh.scan(), []);
  assert.equal(loss, null, 'a deleted store is not reported as lost');
  await fresh.close();
});

test('a kill between removing the copy and the records leaves the store, not a loss', async () => {
  const state = {};
  const idb = freshIndexedDB();
  const opts = { indexedDB: idb, opfs: memoryDirectory(state) };
  const name = uniqueName('del');
  const a = await open(name, opts);
  a.put('k', 'v');
  await a.commit();
  await a.close();
  // The process dies as the records were about to go: deleteDatabase never happens.
  const dying = { ...opts, indexedDB: { open: (...args) => idb.open(...args), deleteDatabase() { throw new Error('killed'); } } };
  await assert.rejects(deleteStore(name, dying), /killed/);
  const again = await open(name, opts);
  let loss = null;
  again.on('data-loss', (e) => (loss = e));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(again.version, 1);
  assert.equal(again.getText('k'), 'v');
  assert.equal(loss, null);
  again.put('k', 'v2');
  assert.equal((await again.commit()).lossProtection, 'copy', 'the copy is rewritten from the records');
  await again.close();
});

test('deleteStore: memory stores, a store that never existed, bad input', async () => {
  const name = uniqueName('del');
  const a = await open(name, { storage: 'memory' });
  a.put('k', 'v');
  await a.commit();
  const closed = nextEvent(a, 'deleted');
  await deleteStore(name, { storage: 'memory' });
  await closed;
  assert.equal((await open(name, { storage: 'memory' })).version, 0);
  await deleteStore(uniqueName('never'), { indexedDB: freshIndexedDB() });
  await assert.rejects(deleteStore('', { storage: 'memory' }), InvalidArgumentError);
  await assert.rejects(deleteStore(name, { storage: 'memory', autosave: 5 }), /does not apply/);
});
