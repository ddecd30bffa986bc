// The in-memory backend (storage: 'memory', memory.ts) behind the same
// StorageBackend contract as IndexedDB: commits reopen, two stores of one
// name conflict and hear each other (contract.test.mjs runs the contract
// suite on it), autosave runs from JS (also after a C++
// mutator's writes), and nothing needs an IndexedDB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { openStore, InvalidArgumentError } from '../dist/node.js';
import { nextEvent, uniqueName } from './helpers.mjs';

const open = (name, options = {}) => openStore(name, { storage: 'memory', autosave: false, ...options });

test('memory: commits reopen in the same realm, exactly as committed', async () => {
  const name = uniqueName('mem');
  const a = await open(name);
  a.put('k', 'v1');
  assert.equal((await a.commit()).version, 1);
  a.put('k', 'uncommitted');
  a.put('other', 'x');
  await a.reload();
  assert.equal(a.getText('k'), 'v1');
  assert.equal(a.has('other'), false);
  await a.close();
  const b = await open(name);
  assert.equal(b.version, 1);
  assert.deepEqual(b.scan().map(([k]) => k), ['k']);
  await b.close();
});

test('memory: autosave commits after a JS write, and after a C++ mutator call settles', async () => {
  const s = await open(uniqueName('mem'), { autosave: 20 });
  const first = nextEvent(s, 'commit', 3000);
  s.put('a', '1');
  assert.equal((await first).version, 1);
  await s.close();

  const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
  assert.ok(existsSync(new URL('client.mjs', ledgerDir)), 'build the wasm-release preset first (make test-js does)');
  const { ledgerModule, Ledger } = await import(new URL('client.mjs', ledgerDir));
  const store = await open(uniqueName('mem'), { autosave: 20, module: ledgerModule });
  const committed = nextEvent(store, 'commit', 3000);
  await new Ledger(store).openAccounts(0, 5, 10); // writes only through C++
  assert.equal((await committed).version, 1);
  assert.equal(store.dirty, false);
  await store.close();
});

test("memory: openStore rejects an unknown storage", async () => {
  await assert.rejects(openStore('x', { storage: 'disk' }), InvalidArgumentError);
});
