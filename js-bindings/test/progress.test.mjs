// Progress of long work (onProgress): importStore and inspectSnapshot report
// the bytes of the snapshot file read and verified so far, of its size;
// store.export() the bytes of the file written, of its size; openStore the
// bytes of records its restore read, of what the manifests say it will read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, importStore, inspectSnapshot, InvalidArgumentError } from '../dist/node.js';
import { freshIndexedDB, tamper, uniqueName } from './helpers.mjs';

/** A snapshot file of a few 4 MiB chunks (random values: nothing compresses away). */
async function bigSnapshot() {
  const store = await openStore(uniqueName('progress-src'), { storage: 'memory', autosave: false });
  const value = new Uint8Array(4096);
  for (let i = 0; i < 3000; ++i) {
    globalThis.crypto.getRandomValues(value);
    store.put(`k${String(i).padStart(5, '0')}`, value);
  }
  const blob = await store.export();
  await store.close();
  return blob;
}

function checkReports(reports, total) {
  assert.ok(reports.length >= 4, `${reports.length} reports`);
  assert.deepEqual(reports[0], { done: 0, total });
  for (let i = 1; i < reports.length; ++i) {
    assert.ok(reports[i].done > reports[i - 1].done, 'done only grows');
    assert.equal(reports[i].total, total);
  }
  if (total !== undefined) assert.equal(reports.at(-1).done, total, 'ends at the whole file');
}

test('importStore and inspectSnapshot report bytes done of the file size, ending at the whole file', async () => {
  const blob = await bigSnapshot();
  assert.ok(blob.size > 12 * 1024 * 1024, `${blob.size} bytes`);

  const inspected = [];
  const info = await inspectSnapshot(blob, { onProgress: (p) => inspected.push(p) });
  assert.equal(info.entries, 3000);
  checkReports(inspected, blob.size);

  const imported = [];
  const store = await importStore(uniqueName('progress-dst'), new Uint8Array(await blob.arrayBuffer()), {
    storage: 'memory',
    onProgress: (p) => imported.push(p),
  });
  checkReports(imported, blob.size);
  assert.equal(store.scan({ prefix: 'k' }).length, 3000);
  await store.close();

  // A Response of unknown length: the total is undefined, done still grows to the file's size.
  const streamed = [];
  const response = new Response(blob.stream());
  await inspectSnapshot(response, { onProgress: (p) => streamed.push(p) });
  checkReports(streamed, undefined);
  assert.equal(streamed.at(-1).done, blob.size);
});

test('onProgress must be a function', async () => {
  const blob = new Blob([new Uint8Array(16)]);
  await assert.rejects(importStore(uniqueName('p'), blob, { storage: 'memory', onProgress: 5 }), InvalidArgumentError);
  await assert.rejects(inspectSnapshot(blob, { onProgress: 'x' }), InvalidArgumentError);
});

/** Fills `store` with `count` random 4 KiB values (nothing compresses away). */
function fill(store, count, prefix = 'k') {
  const value = new Uint8Array(4096);
  for (let i = 0; i < count; ++i) {
    globalThis.crypto.getRandomValues(value);
    store.put(`${prefix}${String(i).padStart(5, '0')}`, value);
  }
}

test('store.export({ onProgress }) reports bytes written of the file size, once at 0 and after each 4 MiB chunk', async () => {
  const store = await openStore(uniqueName('export-progress'), { storage: 'memory', autosave: false });
  fill(store, 3000);
  const reports = [];
  const blob = await store.export({ onProgress: (p) => reports.push(p) });
  assert.ok(blob.size > 12 * 1024 * 1024, `${blob.size} bytes`);
  checkReports(reports, blob.size);
  assert.equal(reports.length, 1 + Math.ceil(blob.size / (4 << 20)), 'one report per chunk');
  assert.throws(() => store.export({ onProgress: 1 }), InvalidArgumentError);
  assert.throws(() => store.export({ onProgres: () => {} }), /unknown option "onProgres"/);
  await store.close();
});

/** A store of `count` random 4 KiB values committed in `commits` versions to `indexedDB`. */
async function storedState(name, indexedDB, count, commits) {
  const store = await openStore(name, { indexedDB, autosave: false, copy: false });
  for (let c = 0; c < commits; ++c) {
    fill(store, count / commits, `c${c}-`);
    await store.commit();
  }
  const version = store.version;
  await store.close();
  return version;
}

test('openStore({ onProgress }) reports bytes of records read, of the packs the restore reads, ending at done === total', async () => {
  const indexedDB = freshIndexedDB();
  const name = uniqueName('open-progress');
  const version = await storedState(name, indexedDB, 2100, 3);
  const reports = [];
  const store = await openStore(name, { indexedDB, autosave: false, copy: false, onProgress: (p) => reports.push(p) });
  assert.equal(store.version, version);
  assert.equal(store.scan({ prefix: 'c2-' }).length, 700);
  await store.close();

  assert.deepEqual(reports[0], { done: 0, total: undefined }, 'nothing known before the head and manifests are read');
  assert.ok(reports.length >= 3, `${reports.length} reports`);
  for (let i = 1; i < reports.length; ++i) assert.ok(reports[i].done >= reports[i - 1].done, 'done never shrinks');
  const last = reports.at(-1);
  assert.equal(last.done, last.total, 'ends at done === total');
  assert.ok(last.done > 2100 * 4096, `${last.done} bytes read: at least the values`);
  // The total is known from the manifests on, and (nothing failed verification) does not change.
  const totals = new Set(reports.slice(1).map((r) => r.total));
  assert.deepEqual([...totals], [last.total]);
  // Each pack is reported as it is read: the packs are at most a few MiB each.
  assert.ok(reports.length >= 2 + Math.floor(last.total / (8 << 20)), `${reports.length} reports for ${last.total} bytes`);
});

test('openStore({ onProgress }): a new store reports 0 of 0; a version that fails verification makes the total grow to the older one\'s', async () => {
  const fresh = [];
  const empty = await openStore(uniqueName('open-progress-new'), { storage: 'memory', onProgress: (p) => fresh.push(p) });
  await empty.close();
  assert.deepEqual(fresh.at(-1), { done: 0, total: 0 });

  const indexedDB = freshIndexedDB();
  const name = uniqueName('open-progress-fallback');
  const version = await storedState(name, indexedDB, 600, 2);
  // Damage a pack of the newest version only: the open falls back to the previous one.
  const newest = version.toString(16).padStart(16, '0');
  await tamper(indexedDB, name, (kind, key, bytes) => {
    if (kind !== 'packs' || !key.startsWith(newest)) return undefined;
    const b = bytes.slice();
    b[b.length - 1] ^= 1;
    return b;
  });
  const reports = [];
  const store = await openStore(name, { indexedDB, autosave: false, copy: false, onProgress: (p) => reports.push(p) });
  assert.equal(store.version, version - 1);
  await store.close();
  for (let i = 1; i < reports.length; ++i) assert.ok(reports[i].done >= reports[i - 1].done, 'done never shrinks');
  assert.equal(reports.at(-1).done, reports.at(-1).total);
  assert.ok(reports.at(-1).total > reports[1].total, 'the total grew when the older version was read too');
});

test('openStore: onProgress must be a function', async () => {
  await assert.rejects(openStore(uniqueName('p'), { storage: 'memory', onProgress: 'x' }), /onProgress must be a function/);
});
