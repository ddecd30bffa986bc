// The OPFS copy's journal (storage/journal.ts): small commits appended to one
// file through a sync handle, confirmed once IndexedDB has them. Here the
// handle is a memoryDirectory's (exclusive, as OPFS's); copy-journal.test.mjs
// runs every test of copy.test.mjs over the journal too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../dist/node.js';
import { JOURNAL_FOLD_BYTES } from '../dist/storage/opfs.js';
import { copyFiles, copyRecordNames, deleteDatabase, dumpRecords, freshIndexedDB, memoryDirectory, nextEvent, uniqueName } from './helpers.mjs';

const open = (name, indexedDB, opfs, options = {}) => openStore(name, { indexedDB, opfs, autosave: false, ...options });
const journalOf = (state, name) => state.files.get(`keepstate/${encodeURIComponent(name)}/journal`);
const dump = (s) => Object.fromEntries(s.scan().map(([k, v]) => [k, new TextDecoder().decode(v)]));

/** IndexedDB's records of store `name` as the copy names them. */
async function idbRecordNames(idb, name) {
  const records = await dumpRecords(idb, name);
  const { headVersionOf, manifestKey } = await import('../dist/storage/backend.js');
  return [
    ...[...records.head.values()].map((h) => `h-${manifestKey(headVersionOf(new Uint8Array(h)))}`),
    ...[...records.manifests.keys()].map((k) => `m-${k}`),
    ...[...records.packs.keys()].map((k) => `p-${k}`),
  ].sort();
}

/** A fresh store name, IndexedDB and copy folder whose files have sync handles. */
function fresh() {
  const state = {};
  return { state, dir: memoryDirectory(state, { syncAccessHandles: true }), idb: freshIndexedDB(), name: uniqueName() };
}

/** Closes `s`, loses its IndexedDB and reopens: what the copy alone gives back must be what `s` held. */
async function survivesLoss(s, { dir, idb, name }) {
  const before = dump(s);
  await s.close();
  await deleteDatabase(idb, name);
  const t = await open(name, idb, dir);
  assert.deepEqual(dump(t), before);
  await t.close();
}

test('small commits go to the journal, not to files: one file in the folder, and IndexedDB lost restores from it', async () => {
  const f = fresh();
  const { state, dir, idb, name } = f;
  const s = await open(name, idb, dir);
  for (let i = 1; i <= 5; ++i) {
    s.put(`k${i}`, `v${i}`);
    assert.equal((await s.commit()).lossProtection, 'copy');
    assert.deepEqual(copyFiles(state, name), ['journal'], `after commit ${i}: nothing but the journal`);
    assert.deepEqual(await copyRecordNames(state, name), await idbRecordNames(idb, name), `after commit ${i}`);
  }
  const before = dump(s);
  await s.close();
  await deleteDatabase(idb, name);
  const t = await open(name, idb, dir);
  const loss = await nextEvent(t, 'data-loss');
  assert.deepEqual([loss.recovered, t.version], [true, 5]);
  assert.deepEqual(dump(t), before);
  await t.close();
});

test('an entry a kill left unconfirmed (IndexedDB never acknowledged it) counts for nothing, and a torn tail is cut', async () => {
  const f = fresh();
  const { state, dir, idb, name } = f;
  const s = await open(name, idb, dir);
  s.put('k', 'v1');
  await s.commit();
  const confirmed = journalOf(state, name).slice();
  s.put('k', 'v2');
  await s.commit();
  await s.close();
  // Version 2's entry without its confirmation (the kill came before IndexedDB completed),
  // then half of an entry (the kill tore the next append).
  const grown = journalOf(state, name);
  const entry = grown.subarray(confirmed.length, grown.length - 32); // a confirmation is 24 + 8 bytes
  const torn = new Uint8Array(confirmed.length + entry.length + 40);
  torn.set(confirmed);
  torn.set(entry, confirmed.length);
  torn.set(entry.subarray(0, 40), confirmed.length + entry.length);
  state.files.set(`keepstate/${encodeURIComponent(name)}/journal`, torn);
  await deleteDatabase(idb, name);
  const t = await open(name, idb, dir);
  assert.equal(t.version, 1, 'version 2 was never confirmed in the copy');
  assert.equal(t.getText('k'), 'v1');
  assert.equal(journalOf(state, name).length, confirmed.length + entry.length, 'the torn tail was cut at open');
  t.put('k', 'v3');
  assert.equal((await t.commit()).version, 2);
  await t.close();
  await deleteDatabase(idb, name);
  const u = await open(name, idb, dir);
  assert.deepEqual([u.version, u.getText('k')], [2, 'v3'], 'the entry after the cut reads back');
  await u.close();
});

test('the journal is folded into files once it passes its bound, and the copy still holds exactly what IndexedDB holds', async () => {
  const f = fresh();
  const { state, dir, idb, name } = f;
  const s = await open(name, idb, dir, { retain: 1 });
  const value = 'z'.repeat(60_000);
  let folded = false;
  for (let i = 1; !folded; ++i) {
    s.put(`k${i % 50}`, value + i);
    await s.commit();
    assert.ok(i < 400, 'no fold after 400 commits of 60 KB');
    folded = journalOf(state, name).length === 16 && i > 1;
    assert.ok(journalOf(state, name).length <= JOURNAL_FOLD_BYTES + (1 << 20), 'the journal stays near its bound');
  }
  await new Promise((r) => setTimeout(r, 10)); // the fold runs after the commit resolved
  assert.deepEqual(await copyRecordNames(state, name), await idbRecordNames(idb, name));
  assert.ok(copyFiles(state, name).some((n) => n.startsWith('p-')), 'the journal\'s records are files now');
  s.put('after', 'fold');
  await s.commit();
  await survivesLoss(s, f);
});

test('a commit too large for the journal is written as files, and the journal before it is folded', async () => {
  const f = fresh();
  const { state, dir, idb, name } = f;
  const s = await open(name, idb, dir);
  s.put('small', 'one');
  await s.commit();
  assert.deepEqual(copyFiles(state, name), ['journal']);
  s.put('big', new Uint8Array(2 << 20).fill(7));
  await s.commit();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(journalOf(state, name).length, 16, 'folded: the journal is empty');
  assert.deepEqual(await copyRecordNames(state, name), await idbRecordNames(idb, name));
  await survivesLoss(s, f);
});

test('two stores of one name (two tabs) hand the journal over between their commits', async () => {
  const f = fresh();
  const { state, dir, idb, name } = f;
  const a = await open(name, idb, dir);
  const b = await open(name, idb, dir);
  for (let i = 1; i <= 6; ++i) {
    const s = i % 2 === 0 ? b : a;
    await s.reload();
    s.put('k', `from ${i % 2 === 0 ? 'b' : 'a'} ${i}`);
    assert.equal((await s.commit()).lossProtection, 'copy');
  }
  assert.deepEqual(await copyRecordNames(state, name), await idbRecordNames(idb, name));
  await a.close();
  await b.close();
  await deleteDatabase(idb, name);
  const t = await open(name, idb, dir);
  assert.deepEqual([t.version, t.getText('k')], [6, 'from b 6']);
  await t.close();
});

test('a realm that cannot hold the journal (its Worker did not load) reads it from outside and writes files; nothing is lost either way', async () => {
  const state = {};
  const withHandles = memoryDirectory(state, { syncAccessHandles: true });
  const without = memoryDirectory(state, { syncAccessHandles: false });
  const idb = freshIndexedDB();
  const name = uniqueName();
  const a = await open(name, idb, withHandles);
  a.put('k', 'journal 1');
  await a.commit();
  await a.close();
  // Version 1 is in the journal only; the other realm still sees it (and would report its loss).
  await deleteDatabase(idb, name);
  const b = await open(name, idb, without);
  assert.deepEqual([(await nextEvent(b, 'data-loss')).recovered, b.getText('k')], [true, 'journal 1']);
  b.put('k', 'files 2');
  assert.equal((await b.commit()).lossProtection, 'copy');
  assert.ok(copyFiles(state, name).includes('h-0000000000000002'), 'written as files');
  await b.close();
  await deleteDatabase(idb, name);
  const c = await open(name, idb, withHandles);
  assert.deepEqual([c.version, c.getText('k')], [2, 'files 2']);
  c.put('k', 'journal 3');
  await c.commit();
  await c.close();
  assert.deepEqual(await copyRecordNames(state, name), await idbRecordNames(idb, name));
});

test('a page that leaves (pagehide: perhaps into the back/forward cache, where it hears nothing) lets go of the journal', async () => {
  // This realm as a page: a document, and window events on the global object.
  const win = new EventTarget();
  globalThis.document = new EventTarget();
  globalThis.addEventListener = win.addEventListener.bind(win);
  globalThis.removeEventListener = win.removeEventListener.bind(win);
  try {
    const f = fresh();
    const s = await open(f.name, f.idb, f.dir);
    s.put('k', 'v');
    await s.commit();
    const path = `keepstate/${encodeURIComponent(f.name)}/journal`;
    assert.ok(f.state.locked.has(path), 'held between commits');
    win.dispatchEvent(new Event('pagehide'));
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(!f.state.locked.has(path), 'let go as the page left');
    s.put('k', 'w');
    assert.equal((await s.commit()).lossProtection, 'copy', 'taken again by the next commit');
    assert.ok(f.state.locked.has(path));
    await survivesLoss(s, f);
  } finally {
    delete globalThis.document;
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  }
});
