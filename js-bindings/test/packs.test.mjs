// How packs are stored in IndexedDB and read back (idb.ts, backend.ts feedPacks):
// packs of 64 KiB or more as Blobs, smaller ones and those written before as
// Uint8Arrays — all of them restore the same state, and a damaged one is still
// found and the version before it restored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../dist/node.js';
import { freshIndexedDB, nextEvent, rawDatabase, tamper, uniqueName } from './helpers.mjs';

const open = (name, indexedDB, options = {}) => openStore(name, { indexedDB, autosave: false, copy: false, ...options });

/** Values of ~2 MiB of 4 KiB records: one version is a few packs of 8 MiB at most. */
const value = (round, i) => new Uint8Array(4096).fill((round * 31 + i) & 255);
const RECORDS = 512;

/** The raw values of the packs object store: key -> Blob | Uint8Array. */
async function rawPacks(idb, name) {
  const db = await rawDatabase(idb, name);
  const os = db.transaction('packs').objectStore('packs');
  const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const [keys, values] = await Promise.all([req(os.getAllKeys()), req(os.getAll())]);
  db.close();
  return new Map(keys.map((k, i) => [k, values[i]]));
}

/**
 * Runs `fn` with methods replaced, each `[object, name, (original) => replacement]`;
 * the originals are back afterwards, whatever happens.
 */
async function patched(replacements, fn) {
  const originals = replacements.map(([object, name]) => [object, name, object[name]]);
  for (const [object, name, replace] of replacements) object[name] = replace(object[name]);
  try {
    return await fn();
  } finally {
    for (const [object, name, original] of originals) object[name] = original;
  }
}

async function twoVersions(idb, name) {
  const s = await open(name, idb);
  for (let i = 0; i < RECORDS; ++i) s.put(`v/${i}`, value(1, i));
  await s.commit();
  for (let i = 0; i < RECORDS; i += 2) s.put(`v/${i}`, value(2, i)); // every leaf changes
  s.put('small', 'x');
  await s.commit();
  s.put('small', 'y'); // version 3: a small pack (a Uint8Array)
  await s.commit();
  await s.close();
}

function checkState(t, round) {
  for (let i = 0; i < RECORDS; ++i) {
    const want = i % 2 === 0 && round >= 2 ? value(2, i) : value(1, i);
    assert.deepEqual(t.get(`v/${i}`), want, `v/${i}`);
  }
}

test('packs of 64 KiB or more are stored as Blobs, smaller ones as bytes, and packs stored as bytes (before issue 17) restore the same', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  await twoVersions(idb, name);
  const packs = await rawPacks(idb, name);
  const kinds = [...packs.values()].map((v) => (v instanceof Blob ? `blob:${v.size >= 65536}` : `bytes:${v.length < 65536}`));
  assert.ok(kinds.includes('blob:true'), `large packs are Blobs: ${kinds}`);
  assert.ok(kinds.includes('bytes:true'), `small packs are Uint8Arrays: ${kinds}`);
  assert.ok(kinds.every((k) => k === 'blob:true' || k === 'bytes:true'), `${kinds}`);

  const t = await open(name, idb);
  assert.equal(t.version, 3);
  checkState(t, 2);
  assert.equal(t.getText('small'), 'y');
  await t.close();

  // The layout before: every pack a Uint8Array (tamper writes the bytes back as they are).
  await tamper(idb, name, (kind, key, bytes) => (kind === 'packs' ? bytes : undefined));
  assert.ok([...(await rawPacks(idb, name)).values()].every((v) => v instanceof Uint8Array));
  const u = await open(name, idb);
  let corrupt = false;
  u.on('corruption', () => { corrupt = true; });
  assert.equal(u.version, 3);
  checkState(u, 2);
  // A commit on top of old packs writes new ones as Blobs; both kinds restore together.
  u.put('small', 'z');
  await u.commit();
  await u.close();
  const w = await open(name, idb);
  assert.equal(w.version, 4);
  checkState(w, 2);
  assert.equal(w.getText('small'), 'z');
  await w.close();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(corrupt, false);
});

test('a damaged pack stored as a Blob is found, and the version before it is restored from its own packs', async () => {
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  for (let i = 0; i < RECORDS; ++i) s.put(`v/${i}`, value(1, i));
  await s.commit();
  for (let i = 0; i < RECORDS; i += 2) s.put(`v/${i}`, value(2, i));
  await s.commit();
  await s.close();
  // Flip one byte in the last pack of version 2, kept a Blob. Version 1's packs are
  // not among those the engine named for version 2: the fallback reads them afterwards.
  const v2 = [...(await rawPacks(idb, name)).entries()].filter(([k]) => k.startsWith('0000000000000002-'));
  assert.ok(v2.length >= 1 && v2.every(([, v]) => v instanceof Blob));
  const [damagedKey] = v2.at(-1);
  await tamper(idb, name, (kind, key, bytes) => {
    if (kind !== 'packs' || key !== damagedKey) return undefined;
    const copy = new Uint8Array(bytes);
    copy[copy.length - 5] ^= 0x40;
    return new Blob([copy]);
  });
  // As in a browser (fake-indexeddb is more lenient): once a Blob's bytes were awaited, the
  // restore's transaction is no longer active, so version 1's packs need one of their own.
  const { IDBObjectStore, IDBDatabase } = await import('fake-indexeddb');
  let blobsRead = false;
  let ownTransactions = 0;
  const t = await patched(
    [
      [IDBObjectStore.prototype, 'get', (get) => function (key) {
        if (this.name === 'packs' && blobsRead && this.transaction.objectStoreNames.length > 1) {
          throw new DOMException('The transaction is not active.', 'TransactionInactiveError');
        }
        return get.call(this, key);
      }],
      [IDBDatabase.prototype, 'transaction', (transaction) => function (names, ...rest) {
        if (names === 'packs') ++ownTransactions;
        return transaction.call(this, names, ...rest);
      }],
      [Blob.prototype, 'arrayBuffer', (arrayBuffer) => function () {
        blobsRead = true;
        return arrayBuffer.call(this);
      }],
    ],
    () => open(name, idb),
  );
  const event = await nextEvent(t, 'corruption');
  assert.equal(t.version, 1);
  checkState(t, 1);
  assert.equal(event.failures[0].version, 2);
  assert.match(event.failures[0].message, /hash mismatch/);
  assert.ok(ownTransactions >= 1, 'the fallback read its packs in a transaction of their own');
  await t.close();
});

test('a restore asks IndexedDB for every pack of the version before it takes the bytes of the first', async () => {
  const { IDBObjectStore } = await import('fake-indexeddb');
  const idb = freshIndexedDB();
  const name = uniqueName();
  const s = await open(name, idb);
  // One version of 12 MiB of values: two packs of at most 8 MiB, or more.
  for (let i = 0; i < 6 * RECORDS; ++i) s.put(`v/${String(i).padStart(5, '0')}`, value(1, i));
  await s.commit();
  await s.close();
  const packKeys = [...(await rawPacks(idb, name)).keys()];
  assert.ok(packKeys.length >= 2, `${packKeys.length} packs`);
  const events = [];
  const t = await patched(
    [
      [IDBObjectStore.prototype, 'get', (get) => function (key) {
        if (this.name === 'packs') events.push(`get ${key}`);
        return get.call(this, key);
      }],
      [Blob.prototype, 'arrayBuffer', (arrayBuffer) => function () {
        events.push('bytes');
        return arrayBuffer.call(this);
      }],
    ],
    () => open(name, idb),
  );
  assert.equal(t.version, 1);
  assert.deepEqual(t.get('v/00007'), value(1, 7));
  const firstBytes = events.indexOf('bytes');
  assert.ok(firstBytes >= 0, `${events}`);
  const gotBefore = events.slice(0, firstBytes).filter((e) => e.startsWith('get ')).map((e) => e.slice(4)).sort();
  assert.deepEqual(gotBefore, [...packKeys].sort(), `${events}`);
  await t.close();
});

test('a database that cannot store Blobs (WebKit\'s ephemeral sessions) gets its packs as bytes, and every commit lands', async () => {
  const { IDBObjectStore } = await import('fake-indexeddb');
  const idb = freshIndexedDB();
  const name = uniqueName();
  let refused = 0;
  // As WebKit does: a put of a Blob fails ("Error preparing Blob/File data to be stored in object store").
  await patched(
    [[IDBObjectStore.prototype, 'put', (put) => function (v, key) {
      if (v instanceof Blob) {
        ++refused;
        throw new DOMException('Error preparing Blob/File data to be stored in object store', 'UnknownError');
      }
      return put.call(this, v, key);
    }]],
    () => twoVersions(idb, name),
  );
  assert.ok(refused >= 1, 'the probe asked');
  const kinds = [...(await rawPacks(idb, name)).values()].map((v) => (v instanceof Blob ? 'blob' : 'bytes'));
  assert.ok(kinds.length > 0 && kinds.every((k) => k === 'bytes'), `${kinds}`);
  const t = await open(name, idb);
  assert.equal(t.version, 3);
  checkState(t, 2);
  await t.close();
});
