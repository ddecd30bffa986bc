// Snapshot files: store.export() -> importStore() round trips (Blob,
// ArrayBuffer, Uint8Array, Response), every byte flip and every truncation
// of a file is refused with CorruptionError and writes nothing, importing
// over data needs replace, schema versions are respected on import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, importStore, CorruptionError, InvalidArgumentError, KeepstateError } from '../dist/node.js';
import { freshIndexedDB, uniqueName } from './helpers.mjs';

const open = (name, indexedDB, options = {}) => openStore(name, { indexedDB, autosave: false, ...options });
const entries = (s) => s.scan().map(([k, v]) => [k, Buffer.from(v).toString('hex')]);
const databases = async (idb) => (await idb.databases()).map((d) => d.name);

async function sampleStore(idb, name) {
  const s = await open(name, idb, { schema: { version: 1 } });
  for (let i = 0; i < 300; ++i) s.putJSON(`item/${String(i).padStart(4, '0')}`, { i, text: 'x'.repeat(i % 50) });
  s.put('big', new Uint8Array(20_000).map((_, i) => i * 7)); // overflow pages
  await s.commit();
  s.delete('item/0007'); // uncommitted: export commits first
  return s;
}

test('export -> import round trip: the same entries, committed and persisted, from every kind of source', async () => {
  const idb = freshIndexedDB();
  const s = await sampleStore(idb, uniqueName('export'));
  const blob = await s.export();
  assert.equal(s.dirty, false, 'export committed the pending change first');
  assert.ok(blob instanceof Blob && blob.size > 20_000);
  const want = entries(s);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  for (const source of [blob, bytes.buffer.slice(0), bytes, new Response(blob)]) {
    const name = uniqueName('import');
    const t = await importStore(name, source, { indexedDB: idb, autosave: false, schema: { version: 1 } });
    assert.deepEqual(entries(t), want, source.constructor.name);
    assert.deepEqual([t.version, t.schemaVersion, t.dirty], [1, 1, false]);
    await t.close();
    const again = await open(name, idb, { schema: { version: 1 } });
    assert.deepEqual(entries(again), want, 'persisted');
    again.put('after', 'import'); // an imported store behaves like any other
    assert.equal((await again.commit()).version, 2);
    await again.close();
  }
  await s.close();
});

test('every byte flip and every truncation of a file is refused with CorruptionError, and nothing is written', async () => {
  const idb = freshIndexedDB();
  const s = await open(uniqueName('small'), idb);
  s.put('k', 'v');
  s.putJSON('n', 42);
  const file = new Uint8Array(await (await s.export()).arrayBuffer());
  await s.close();
  const before = await databases(idb);
  const name = uniqueName('victim');
  let refused = 0;
  for (let at = 0; at < file.length; ++at) {
    const bad = file.slice();
    bad[at] ^= 0x10;
    await assert.rejects(importStore(name, bad, { indexedDB: idb }), (e) => e instanceof CorruptionError || e.code === 'unsupported', `flip at ${at}`);
    ++refused;
  }
  for (let length = 0; length < file.length; length += length < 200 ? 1 : 97) {
    await assert.rejects(importStore(name, file.subarray(0, length), { indexedDB: idb }), CorruptionError, `truncated to ${length}`);
    ++refused;
  }
  await assert.rejects(importStore(name, new TextEncoder().encode('{"not":"a snapshot"}'), { indexedDB: idb }), CorruptionError);
  assert.ok(refused > file.length);
  assert.deepEqual(await databases(idb), before, 'no database was even created');
  await assert.rejects(importStore(name, 'text', { indexedDB: idb }), InvalidArgumentError);
});

test('importing over a store that has data is refused unless replace: true, which replaces it', async () => {
  const idb = freshIndexedDB();
  const src = await open(uniqueName('src'), idb);
  src.put('from', 'file');
  const file = await src.export();
  await src.close();
  const name = uniqueName('target');
  const t = await open(name, idb);
  t.put('old', 'data');
  await t.commit();
  await t.close();
  await assert.rejects(importStore(name, file, { indexedDB: idb }), (e) => e instanceof InvalidArgumentError && /has data \(version 1\)/.test(e.message));
  const kept = await open(name, idb);
  assert.deepEqual(entries(kept), [['old', Buffer.from('data').toString('hex')]], 'left as it was');
  await kept.close();
  const r = await importStore(name, file, { indexedDB: idb, replace: true });
  assert.deepEqual(r.scan().map(([k]) => k), ['from']);
  assert.equal(r.version, 2, 'committed on top of the stored version');
  await r.close();
});

test('import and schema versions: a newer file is refused, an older one is migrated before its commit', async () => {
  const idb = freshIndexedDB();
  const v2 = await open(uniqueName('v2'), idb, { schema: { version: 2 } });
  const newer = await v2.export();
  await v2.close();
  await assert.rejects(importStore(uniqueName(), newer, { indexedDB: idb, schema: { version: 1 } }), (e) => e instanceof KeepstateError && e.code === 'unsupported');
  const v1 = await open(uniqueName('v1'), idb, { schema: { version: 1 } });
  v1.putJSON('user/1', { name: 'Ann Lee' });
  const older = await v1.export();
  await v1.close();
  const migrate = (tx, from) => {
    assert.equal(from, 1);
    const { name } = tx.getJSON('user/1');
    tx.putJSON('user/1', { first: name.split(' ')[0] });
  };
  const name = uniqueName('migrated');
  const m = await importStore(name, older, { indexedDB: idb, schema: { version: 2, migrate } });
  assert.deepEqual([m.getJSON('user/1'), m.schemaVersion, m.version], [{ first: 'Ann' }, 2, 1], 'one commit: the import and its migration');
  await m.close();
  // A migration that throws leaves nothing written.
  const failing = uniqueName('failing');
  await assert.rejects(importStore(failing, older, { indexedDB: idb, schema: { version: 2, migrate: () => { throw new Error('no'); } } }), /no/);
  const empty = await open(failing, idb);
  assert.deepEqual([empty.version, empty.scan().length], [0, 0]);
  await empty.close();
});

test('importing from a Response: a 404 says so; Content-Length refuses a truncated file at its header; an abort stops it', async () => {
  const idb = freshIndexedDB();
  const source = await sampleStore(idb, uniqueName('src'));
  const file = new Uint8Array(await (await source.export()).arrayBuffer());
  await source.close();
  await assert.rejects(
    importStore(uniqueName('dst'), new Response('no such file', { status: 404, statusText: 'Not Found' }), { indexedDB: idb, schema: { version: 1 } }),
    (e) => e instanceof InvalidArgumentError && /404 Not Found/.test(e.message),
  );
  // A file cut short, whose header claims more: refused at the first chunk, the rest never read.
  let pulls = 0;
  const part = file.subarray(0, file.length - 4096);
  const body = new ReadableStream({
    pull(controller) {
      ++pulls;
      if (pulls === 1) controller.enqueue(part.slice(0, 1000));
      else if (pulls === 2) controller.enqueue(part.slice(1000));
      else controller.close();
    },
  }, { highWaterMark: 0 });
  const truncated = new Response(body, { headers: { 'content-length': String(part.length) } });
  const name = uniqueName('dst');
  await assert.rejects(importStore(name, truncated, { indexedDB: idb, schema: { version: 1 } }), (e) => e instanceof CorruptionError && /truncated/.test(e.message));
  assert.equal(pulls, 1, 'the header alone was enough to refuse it');
  assert.ok(!(await databases(idb)).includes(`keepstate:${name}`), 'a refused import creates nothing');
  // An abort: the import rejects with the signal's reason and keeps nothing.
  const controller = new AbortController();
  const stalled = new Response(new ReadableStream({
    start(c) {
      c.enqueue(file.subarray(0, 4096));
      controller.abort(new Error('the user gave up'));
    },
  }));
  const aborted = uniqueName('dst');
  await assert.rejects(importStore(aborted, stalled, { indexedDB: idb, schema: { version: 1 }, signal: controller.signal }), /the user gave up/);
  assert.ok(!(await databases(idb)).includes(`keepstate:${aborted}`));
});

test('a refused import or open keeps nothing: another page size, a newer schema, a bad page size', async () => {
  const idb = freshIndexedDB();
  const source = await sampleStore(idb, uniqueName('src'));
  const file = await source.export();
  await source.close();
  // The target exists with another page size: refused, and the import's memory given back.
  const other = uniqueName('dst');
  const t = await open(other, idb, { pageSize: 8192 });
  t.put('mine', 'x');
  await t.commit();
  await t.close();
  await assert.rejects(importStore(other, file, { indexedDB: idb, replace: true, schema: { version: 1 } }), /page size/);
  const still = await open(other, idb);
  assert.equal(still.getText('mine'), 'x', 'the store is as it was');
  await still.close();
  // A file with a newer schema than the code's, and an invalid page size: nothing is created.
  const newer = uniqueName('dst');
  await assert.rejects(importStore(newer, file, { indexedDB: idb }), (e) => e instanceof KeepstateError && e.code === 'unsupported');
  assert.ok(!(await databases(idb)).includes(`keepstate:${newer}`));
  const bad = uniqueName('bad');
  await assert.rejects(openStore(bad, { indexedDB: idb, pageSize: 1000 }), /pageSize must be a power of two/);
  assert.ok(!(await databases(idb)).includes(`keepstate:${bad}`));
});
