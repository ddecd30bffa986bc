// Progress of long work: importStore and inspectSnapshot report the bytes of
// the snapshot file read and verified so far, of its size (onProgress).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, importStore, inspectSnapshot, InvalidArgumentError } from '../dist/node.js';
import { uniqueName } from './helpers.mjs';

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
