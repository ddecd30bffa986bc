// The backend contract (support/backend-contract.mjs) over every backend a
// store can have: IndexedDB, memory, and one an app writes itself, passed
// to openStore as `storage: backend` (support/map-backend.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, InvalidArgumentError } from '../dist/node.js';
import { backendContract } from './support/backend-contract.mjs';
import { mapStorage } from './support/map-backend.mjs';
import { dumpRecords, freshIndexedDB, uniqueName } from './helpers.mjs';

const idb = freshIndexedDB();
backendContract('IndexedDB', {
  open: (name, options) => openStore(name, { indexedDB: idb, ...options }),
  async stored(name) {
    const records = await dumpRecords(idb, name);
    return Object.values(records).reduce((n, map) => n + [...map.values()].reduce((m, b) => m + b.length, 0), 0);
  },
});

backendContract('memory', {
  open: (name, options) => openStore(name, { storage: 'memory', ...options }),
});

const maps = new Map();
const mapOf = (name) => {
  if (!maps.has(name)) maps.set(name, mapStorage());
  return maps.get(name);
};
backendContract("an app's own backend", {
  open: (name, options) => openStore(name, { storage: mapOf(name).backend(), ...options }),
  stored: async (name) => [...mapOf(name).records.values()].reduce((n, r) => n + r.bytes.length, 0),
});

test('storage: an object that is not a backend is refused with what it lacks', async () => {
  await assert.rejects(openStore('not-a-backend', { storage: { label: 'x', readHead() {} } }), (e) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.match(e.message, /writeCommit/);
    return true;
  });
});

test("an app's own backend: every commit goes through its writeCommit, and a reopen reads only through it", async () => {
  const storage = mapStorage();
  const name = uniqueName('own');
  const a = await openStore(name, { storage: storage.backend(), autosave: false });
  a.put('k', 'v');
  await a.commit();
  a.put('k2', 'v2');
  await a.commit();
  assert.equal(storage.writes(), 2);
  await a.close();
  const b = await openStore(name, { storage: storage.backend(), autosave: false });
  assert.deepEqual(b.scan().map(([k, v]) => [k, new TextDecoder().decode(v)]), [['k', 'v'], ['k2', 'v2']]);
  assert.equal(b.lossProtection, 'none');
  await b.close();
});
