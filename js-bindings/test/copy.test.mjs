// The second copy and data-loss detection (storage/guarded.ts, storage/opfs.ts): a store whose
// IndexedDB the browser lost, or that was deleted behind its back, comes back
// from the OPFS copy (here an in-memory directory) or is reported loudly —
// never opened as if new.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, DataLossError, KeepstateError } from '../dist/node.js';
import {
  copyFiles, copyRecordNames, damageEveryManifest, deleteDatabase, dumpRecords, freshIndexedDB, lossReportingIndexedDB, memoryDirectory, nextEvent, tamper,
  uniqueName,
} from './helpers.mjs';

const open = (name, indexedDB, opfs, options = {}) =>
  openStore(name, { indexedDB, autosave: false, ...(opfs ? { opfs } : { copy: false }), ...options });

/** A store with `commits` commits of key `k` = `v<i>` plus a 20 KiB value; returns what it holds. */
async function committed(name, idb, dir, commits = 3) {
  const s = await open(name, idb, dir);
  for (let i = 1; i <= commits; ++i) {
    s.put('k', `v${i}`);
    s.put(`big${i % 2}`, 'x'.repeat(20_000) + i);
    assert.equal((await s.commit()).version, i);
  }
  const state = Object.fromEntries(s.scan().map(([k, v]) => [k, new TextDecoder().decode(v)]));
  await s.close();
  return state;
}

const dump = (s) => Object.fromEntries(s.scan().map(([k, v]) => [k, new TextDecoder().decode(v)]));

test('the copy holds exactly what IndexedDB holds after every commit, and old records leave both', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, dir, { retain: 1 });
  for (let i = 1; i <= 6; ++i) {
    s.put(`key${i}`, 'y'.repeat(5000));
    await s.commit();
    const records = await dumpRecords(idb, name);
    const expected = [
      ...[...records.head.values()].map(() => `h-${i.toString(16).padStart(16, '0')}`),
      ...[...records.manifests.keys()].map((k) => `m-${k}`),
      ...[...records.packs.keys()].map((k) => `p-${k}`),
    ].sort();
    assert.deepEqual(await copyRecordNames(state, name), expected, `after commit ${i}`);
    if (!dir.syncAccessHandles) {
      for (const [key, bytes] of records.packs) {
        assert.deepEqual(state.files.get(`keepstate/${encodeURIComponent(name)}/p-${key}`), new Uint8Array(bytes));
      }
    }
  }
  await s.close();
});

test('files a kill left empty (created, never written: a commit that was not acknowledged) are not taken for versions', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const before = await committed(name, idb, dir, 1);
  // What the stress run found: OPFS creates a file's entry before its bytes are
  // moved in, so a kill after IndexedDB took version 2 and before the copy's
  // manifest and head were written leaves them empty (version 2 was never acknowledged).
  const folder = `keepstate/${encodeURIComponent(name)}/`;
  state.files.set(`${folder}h-0000000000000002`, new Uint8Array(0));
  state.files.set(`${folder}m-0000000000000002`, new Uint8Array(0));
  await deleteDatabase(idb, name);
  const s = await open(name, idb, dir);
  const events = [];
  s.on('corruption', (e) => events.push(e));
  const loss = await nextEvent(s, 'data-loss');
  assert.equal(s.version, 1);
  assert.deepEqual(dump(s), before);
  assert.deepEqual({ recovered: loss.recovered, lastKnownVersion: loss.lastKnownVersion, restoredVersion: loss.restoredVersion },
    { recovered: true, lastKnownVersion: 1, restoredVersion: 1 });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(events, [], 'nothing that was acknowledged failed verification');
  await s.close();
});

test("swap files a crash left behind ('*.crswap') are removed at open, records are not", async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  await committed(name, idb, dir, 1);
  const folder = `keepstate/${encodeURIComponent(name)}/`;
  state.files.set(`${folder}p-0000000000000002-0000000000000001-00000000.crswap`, new Uint8Array(10));
  state.files.set(`${folder}h-0000000000000002.crswap`, new Uint8Array(48));
  const before = copyFiles(state, name).filter((n) => !n.endsWith('.crswap'));
  const s = await open(name, idb, dir);
  assert.deepEqual(copyFiles(state, name), before);
  await s.close();
});

test('a database deleted behind the store is restored from the copy, written back, and reported', async () => {
  const dir = memoryDirectory();
  const idb = freshIndexedDB();
  const name = uniqueName();
  const before = await committed(name, idb, dir);
  await deleteDatabase(idb, name);

  const s = await open(name, idb, dir);
  const event = await nextEvent(s, 'data-loss');
  assert.equal(s.version, 3);
  assert.deepEqual(dump(s), before);
  assert.deepEqual(
    { ...event, failures: undefined },
    { reason: 'missing', browserMessage: '', lastKnownVersion: 3, restoredVersion: 3, recovered: true, failures: undefined },
  );
  // IndexedDB holds it again: without the copy it opens at version 3 as well.
  const records = await dumpRecords(idb, name);
  assert.equal(records.head.size, 1);
  await s.close();
  const t = await open(name, idb, false);
  assert.equal(t.version, 3);
  assert.deepEqual(dump(t), before);
  t.put('k', 'after');
  assert.equal((await t.commit()).version, 4);
  await t.close();
});

test("a loss the browser reports ('dataLoss' on the upgrade) is recovered from the copy", async () => {
  const dir = memoryDirectory();
  const name = uniqueName();
  const before = await committed(name, freshIndexedDB(), dir);
  // The browser deleted the origin's IndexedDB and says so once, at the next upgrade.
  const idb = lossReportingIndexedDB(freshIndexedDB());
  const s = await open(name, idb, dir);
  const event = await nextEvent(s, 'data-loss');
  assert.equal(event.reason, 'browser-reported');
  assert.equal(event.browserMessage, 'IndexedDB (database was corrupt): checksum mismatch');
  assert.equal(event.recovered, true);
  assert.equal(event.restoredVersion, 3);
  assert.deepEqual(dump(s), before);
  s.put('k', 'v4');
  assert.equal((await s.commit()).version, 4);
  await s.close();
  // The recovery cleared the browser's report: the next open is a normal one.
  const t = await open(name, idb, dir);
  let heard = false;
  t.on('data-loss', () => { heard = true; });
  assert.equal(t.getText('k'), 'v4');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(heard, false);
  await t.close();
});

test('without a copy, a reported loss rejects with DataLossError at every open until the app opens what is left', async () => {
  const name = uniqueName();
  const idb = lossReportingIndexedDB(freshIndexedDB());
  const error = await open(name, idb, false).then(() => assert.fail('must not open'), (e) => e);
  assert.ok(error instanceof DataLossError, String(error));
  assert.ok(error instanceof KeepstateError);
  assert.equal(error.code, 'data-loss');
  assert.equal(error.browserMessage, 'IndexedDB (database was corrupt): checksum mismatch');
  assert.match(error.message, /checksum mismatch/);
  // The upgrade that reported it is over, yet the loss is still known.
  await assert.rejects(open(name, idb, false), DataLossError);
  const s = await open(name, idb, false, { onDataLoss: 'open' });
  const event = await nextEvent(s, 'data-loss');
  assert.equal(event.recovered, false);
  assert.equal(event.reason, 'browser-reported');
  assert.equal(s.version, 0);
  s.put('k', 'new');
  assert.equal((await s.commit()).version, 1);
  await s.close();
  const t = await open(name, idb, false);
  assert.equal(t.getText('k'), 'new');
  await t.close();
});

test('with the copy off, the marker still turns a deleted database into DataLossError, not an empty store', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  await committed(name, idb, false, 2); // no directory: nothing but IndexedDB
  const s = await open(name, idb, dir, { copy: false }); // the copy off, the marker in `dir`
  assert.equal(s.version, 2);
  s.put('k', 'v3');
  await s.commit();
  await s.close();
  assert.deepEqual(copyFiles(state, name), ['x-0000000000000003'], 'a marker, no copy');
  await deleteDatabase(idb, name);

  const error = await open(name, idb, dir, { copy: false }).catch((e) => e);
  assert.ok(error instanceof DataLossError, String(error));
  assert.equal(error.lastKnownVersion, 3);
  assert.equal(error.storedVersion, 0);
});

test('a copy that is behind (turned on later, or a commit it missed) is rewritten from IndexedDB at open', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const before = await committed(name, idb, false, 3);
  assert.deepEqual(copyFiles(state, name), []);
  const s = await open(name, idb, dir);
  assert.ok(copyFiles(state, name).includes('h-0000000000000003'), copyFiles(state, name).join());
  await s.close();
  // The copy alone restores it.
  const t = await open(name, freshIndexedDB(), dir);
  assert.equal(t.version, 3);
  assert.deepEqual(dump(t), before);
  await t.close();
});

test('a newest version damaged in IndexedDB comes back intact from the copy', async () => {
  const dir = memoryDirectory();
  const idb = freshIndexedDB();
  const name = uniqueName();
  const before = await committed(name, idb, dir);
  await tamper(idb, name, (kind, key, bytes) => {
    if (kind !== 'packs' || !key.startsWith('0000000000000003-')) return undefined;
    const copy = new Uint8Array(bytes);
    copy[17] ^= 0xff;
    return copy;
  });
  const s = await open(name, idb, dir);
  const event = await nextEvent(s, 'data-loss');
  assert.equal(event.reason, 'corrupt');
  assert.equal(event.recovered, true);
  assert.equal(event.failures[0].version, 3);
  assert.equal(s.version, 3);
  assert.deepEqual(dump(s), before);
  await s.close();
});

test('a copy that cannot be written: the commit stands in IndexedDB, says so, and the next commit rewrites the copy', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, dir);
  s.put('k', 'v1');
  await s.commit();
  state.failWrites = true;
  const errorEvent = nextEvent(s, 'error');
  s.put('k', 'v2');
  const missed = await s.commit();
  assert.deepEqual([missed.version, missed.lossProtection], [2, 'none'], 'not even a marker could be written');
  assert.equal((await errorEvent).code, 'quota');
  state.failWrites = false;
  s.put('k', 'v3');
  const caughtUp = await s.commit();
  assert.deepEqual([caughtUp.version, caughtUp.lossProtection], [3, 'copy']);
  await s.close();
  const t = await open(name, freshIndexedDB(), dir);
  assert.equal(t.getText('k'), 'v3', 'restored from the copy, which caught up');
  await t.close();
});

test('a commit the copy missed is never reported as recovered: IndexedDB lost after it is a DataLossError naming it', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, dir);
  s.put('k', 'v1');
  assert.equal((await s.commit()).lossProtection, 'copy');
  // The copy cannot take version 2's records; a marker of the version still fits.
  state.failWrite = (path) => !path.includes('/x-');
  const errorEvent = nextEvent(s, 'error');
  s.put('k', 'v2');
  const second = await s.commit();
  assert.equal(second.version, 2);
  assert.equal(second.lossProtection, 'marker', 'the commit says the copy does not hold it');
  assert.equal(s.lossProtection, 'marker');
  assert.match((await errorEvent).message, /version 2 is committed in IndexedDB only/);
  await s.close();
  state.failWrite = undefined;
  // IndexedDB is lost: the copy has version 1 only, and version 2 is known to have existed.
  await deleteDatabase(idb, name);
  const error = await open(name, idb, dir).catch((e) => e);
  assert.ok(error instanceof DataLossError, String(error));
  assert.equal(error.lastKnownVersion, 2);
  // Opening what is left says so: restored from the copy, not recovered.
  const lossEvent = { value: null };
  const t = await openStore(name, { indexedDB: idb, opfs: dir, autosave: false, onDataLoss: 'open' });
  t.on('data-loss', (e) => (lossEvent.value = e));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(t.version, 1);
  assert.equal(t.getText('k'), 'v1');
  assert.deepEqual([lossEvent.value?.recovered, lossEvent.value?.lastKnownVersion, lossEvent.value?.restoredVersion], [false, 2, 1]);
  t.put('k', 'v3');
  assert.equal((await t.commit()).lossProtection, 'copy', 'the copy is back in step');
  await t.close();
});

test('a commit IndexedDB refuses (conflict) leaves nothing in the copy', async () => {
  const state = {};
  const dir = memoryDirectory(state);
  const idb = freshIndexedDB();
  const name = uniqueName();
  const a = await open(name, idb, dir);
  const b = await open(name, idb, dir, { onConflict: 'reject', follow: false });
  a.put('who', 'a');
  await a.commit();
  const files = copyFiles(state, name);
  b.put('who', 'b'.repeat(9000));
  await assert.rejects(b.commit(), { code: 'conflict' });
  assert.deepEqual(copyFiles(state, name), files);
  await a.close();
  await b.reload();
  await b.close();
});

test('openStore rejects a bad copy (or its former name mirror) or onDataLoss option', async () => {
  await assert.rejects(openStore('x', { indexedDB: freshIndexedDB(), copy: 'yes' }), { code: 'invalid-argument' });
  await assert.rejects(openStore('x', { indexedDB: freshIndexedDB(), mirror: 'yes' }), { code: 'invalid-argument' });
  await assert.rejects(openStore('x', { indexedDB: freshIndexedDB(), copy: true, mirror: false }), { code: 'invalid-argument' });
  await assert.rejects(openStore('x', { indexedDB: freshIndexedDB(), opfs: {} }), { code: 'invalid-argument' });
  await assert.rejects(openStore('x', { indexedDB: freshIndexedDB(), onDataLoss: 'ignore' }), { code: 'invalid-argument' });
});

test("where there is no OPFS (WebKitGTK; Node here) a store opens, commits and reopens with lossProtection 'none': no copy, no marker", async () => {
  assert.equal(typeof globalThis.navigator?.storage?.getDirectory, 'undefined', 'this test needs a realm without OPFS');
  const idb = freshIndexedDB();
  const name = uniqueName();
  for (const copy of [true, false]) {
    const s = await openStore(`${name}-${copy}`, { indexedDB: idb, autosave: false, copy });
    assert.equal(s.lossProtection, 'none');
    s.put('k', 'v');
    assert.equal((await s.commit()).version, 1);
    await s.close();
    const again = await openStore(`${name}-${copy}`, { indexedDB: idb, autosave: false, copy });
    assert.equal(again.version, 1);
    assert.equal(again.getText('k'), 'v');
    await again.close();
  }
  // Without a marker, a database deleted behind the store opens empty: nothing knew it existed.
  await deleteDatabase(idb, `${name}-true`);
  const gone = await openStore(`${name}-true`, { indexedDB: idb, autosave: false });
  assert.equal(gone.version, 0);
  await gone.close();
  // With OPFS, the same options give the copy or the marker.
  const withCopy = await open(uniqueName(), idb, memoryDirectory({}));
  assert.equal(withCopy.lossProtection, 'copy');
  await withCopy.close();
  // `mirror` is copy's former name, still accepted.
  const withMarker = await open(uniqueName(), idb, memoryDirectory({}), { mirror: false });
  assert.equal(withMarker.lossProtection, 'marker');
  await withMarker.close();
  const memory = await openStore(uniqueName(), { storage: 'memory', autosave: false });
  assert.equal(memory.lossProtection, 'none');
  await memory.close();
});

test('every version damaged in IndexedDB: the copy restores them instead of a refusal', async () => {
  const dir = memoryDirectory({});
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb, dir);
  s.put('k', 'v1');
  await s.commit();
  s.put('k', 'v2');
  await s.commit();
  await s.close();
  await damageEveryManifest(idb, name);
  const t = await open(name, idb, dir);
  const loss = await nextEvent(t, 'data-loss');
  assert.deepEqual([loss.reason, loss.recovered, loss.restoredVersion], ['corrupt', true, 2]);
  assert.equal(t.getText('k'), 'v2');
  await t.close();
  const u = await open(name, idb, dir);
  assert.equal(u.getText('k'), 'v2', 'IndexedDB was rewritten from the copy');
  await u.close();
});
