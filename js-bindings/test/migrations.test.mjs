// Schema migrations at open (OpenOptions.schema): once, not again, a throwing
// migration leaves the stored data as it was, a newer stored version is
// refused, two stores migrating at once migrate once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, InvalidArgumentError, KeepstateError } from '../dist/node.js';
import { freshIndexedDB, dumpRecords, nextEvent, uniqueName } from './helpers.mjs';

const open = (name, indexedDB, options = {}) => openStore(name, { indexedDB, autosave: false, ...options });

test('a migration runs once at open, committed before the store is handed out, and not again', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName('schema');
  const calls = [];
  const v1 = { version: 1, migrate: (tx, from) => { calls.push(from); tx.putJSON('user/1', { name: 'Ann Lee' }); } };
  const s = await open(name, idb, { schema: v1 });
  assert.deepEqual(calls, [0]);
  assert.deepEqual([s.schemaVersion, s.version, s.dirty], [1, 1, false], 'the migration is committed');
  await s.close();
  const again = await open(name, idb, { schema: v1 });
  assert.deepEqual(calls, [0], 'not run again');
  await again.close();
  // Version 2 splits the name.
  const v2 = {
    version: 2,
    migrate: (tx, from) => {
      calls.push(from);
      for (const [key] of tx.scan({ prefix: 'user/' })) {
        const { name: full } = tx.getJSON(key);
        const [first, last] = full.split(' ');
        tx.putJSON(key, { first, last });
      }
    },
  };
  const s2 = await open(name, idb, { schema: v2 });
  assert.deepEqual(calls, [0, 1]);
  assert.deepEqual(s2.getJSON('user/1'), { first: 'Ann', last: 'Lee' });
  assert.equal(s2.schemaVersion, 2);
  await s2.close();
});

test('a migration that throws rejects openStore with its error and leaves the stored data exactly as it was', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName('schema');
  const s = await open(name, idb, { schema: { version: 1 } });
  s.put('k', 'v1');
  await s.commit();
  await s.close();
  const before = await dumpRecords(idb, name);
  const broken = new Error('bad data in row 7');
  await assert.rejects(open(name, idb, { schema: { version: 2, migrate: (tx) => { tx.put('k', 'half'); throw broken; } } }), (e) => e === broken);
  assert.deepEqual(await dumpRecords(idb, name), before, 'nothing was written');
  await assert.rejects(open(name, idb, { schema: { version: 2, migrate: async () => {} } }), InvalidArgumentError);
  const t = await open(name, idb, { schema: { version: 1 } });
  assert.deepEqual([t.getText('k'), t.schemaVersion, t.version], ['v1', 1, 2 - 1 + 1 - 1 + 1]);
  await t.close();
});

test("a stored schema version newer than the code's is refused ('unsupported') and left as it is", async () => {
  const idb = freshIndexedDB();
  const name = uniqueName('schema');
  const s = await open(name, idb, { schema: { version: 3 } });
  await s.close();
  const before = await dumpRecords(idb, name);
  await assert.rejects(open(name, idb, { schema: { version: 2 } }), (e) =>
    e instanceof KeepstateError && e.code === 'unsupported' && /schema version 3, newer than this code's 2/.test(e.message));
  await assert.rejects(open(name, idb), (e) => e.code === 'unsupported', 'no schema option: version 0 code');
  assert.deepEqual(await dumpRecords(idb, name), before);
});

test('two stores migrating one state at once: the migration is applied once (the second rebases onto the first)', async () => {
  const name = uniqueName('schema');
  let runs = 0;
  const schema = { version: 1, migrate: (tx) => { ++runs; tx.putJSON('migrations', (tx.getJSON('migrations') ?? 0) + 1); } };
  const [a, b] = await Promise.all([1, 2].map(() => openStore(name, { storage: 'memory', autosave: false, schema })));
  assert.equal(a.getJSON('migrations'), 1);
  assert.equal(b.getJSON('migrations'), 1);
  assert.equal(b.schemaVersion, 1);
  assert.ok(runs >= 2, 'each store ran it on the state it had');
  await Promise.all([a.close(), b.close()]);
});

test('bad schema options are InvalidArgumentError', async () => {
  for (const schema of [null, 1, { version: 0 }, { version: 1.5 }, { version: '2' }, { version: 1, migrate: 'x' }]) {
    await assert.rejects(openStore(uniqueName(), { storage: 'memory', schema }), InvalidArgumentError, JSON.stringify(schema));
  }
});

test('a tab on older code that follows another tab\'s migration stops writing: commits are unsupported, an event says why', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const old = await open(name, idb, { schema: { version: 1 } });
  old.putJSON('todo/1', { title: 'old shape' });
  await old.commit();
  const newer = nextEvent(old, 'schema-newer');
  const followed = nextEvent(old, 'remote-commit');
  const next = await open(name, idb, {
    schema: { version: 2, migrate: (tx) => tx.putJSON('todo/1', { text: tx.getJSON('todo/1').title }) },
  });
  await followed;
  assert.deepEqual(await newer, { storedVersion: 2, codeVersion: 1 });
  assert.equal(old.schemaVersion, 2);
  old.putJSON('todo/2', { title: 'old shape again' });
  await assert.rejects(old.commit(), (e) => e instanceof KeepstateError && e.code === 'unsupported' && /another tab migrated it/.test(e.message));
  assert.equal(old.dirty, true, 'the old-shape write stays local');
  await old.close(); // closes without its old-shape writes: they can never be written
  const check = await open(name, idb, { schema: { version: 2 } });
  assert.deepEqual(check.getJSON('todo/1'), { text: 'old shape' });
  assert.equal(check.has('todo/2'), false, 'nothing of the old code reached the stored data');
  await Promise.all([next.close(), check.close()]);
});
