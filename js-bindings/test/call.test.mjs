// store.call(): C++ mutators (keepstate::sdk) run as fibers, exercised with
// the ledger example module (examples/ledger, built by the wasm-release
// preset) and with the package's own module, which registers none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { openStore, InvalidArgumentError, KeepstateError, ClosedError } from '../dist/node.js';
import { freshIndexedDB, uniqueName } from './helpers.mjs';

const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
assert.ok(existsSync(new URL('client.mjs', ledgerDir)), 'build the wasm-release preset first (make test-js does)');
const { ledgerModule, Ledger, accountKey, encodeTransferBatch } = await import(new URL('client.mjs', ledgerDir));

test('encodeTransferBatch writes each TransferOp as the schema lays it out, any int64 amount included', async () => {
  const { TransferBatch } = await import(new URL('js/ledger.js', ledgerDir));
  const flatbuffers = await import('flatbuffers');
  const from = [0, 7, 4294967295, 3];
  const to = [1, 8, 0, 3];
  const amount = [5, 2 ** 33 + 1, -7, 0];
  for (const [start, end] of [[0, 4], [1, 3]]) {
    const batch = TransferBatch.getRootAsTransferBatch(new flatbuffers.ByteBuffer(encodeTransferBatch(from, to, amount, start, end)));
    assert.equal(batch.opsLength(), end - start);
    for (let i = start; i < end; ++i) {
      const op = batch.ops(i - start);
      assert.deepEqual([op.from(), op.to(), op.amount()], [from[i], to[i], BigInt(amount[i])]);
    }
  }
});

async function openLedger(indexedDB = freshIndexedDB(), name = uniqueName('ledger')) {
  const store = await openStore(name, { indexedDB, module: ledgerModule, autosave: false });
  return { store, ledger: new Ledger(store), indexedDB, name };
}

/** A deterministic stream of random transfers among `accounts` accounts. */
function randomTransfers(n, accounts, seed = 1) {
  let x = seed >>> 0 || 1;
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>>= 0));
  const from = new Uint32Array(n), to = new Uint32Array(n), amount = new Uint32Array(n);
  for (let i = 0; i < n; ++i) {
    from[i] = next() % accounts;
    to[i] = next() % accounts;
    amount[i] = 1 + (next() % 200);
  }
  return { from, to, amount };
}

test('mutators open accounts, transfer and report balances; JS reads the same records', async () => {
  const { store, ledger } = await openLedger();
  assert.deepEqual(await ledger.openAccounts(0, 10, 100), { accounts: 10, total: 1000, transfers: 0, rejected: 0 });
  assert.deepEqual(await ledger.transfer(3, 7, 40), { applied: 1, rejected: 0 });
  assert.deepEqual(await ledger.balance(3), { id: 3, balance: 60, transfers: 1 });
  assert.deepEqual(ledger.account(7), { id: 7, balance: 140, transfers: 1 }, 'the FlatBuffers record, read from JS');
  assert.ok(store.has(accountKey(9)) && !store.has(accountKey(10)));
  assert.deepEqual(ledger.totals(), { accounts: 10, total: 1000, transfers: 1, rejected: 0 });
  assert.equal((await ledger.audit()).ok, true);
  assert.equal(store.dirty, true, 'a mutator write marks the store dirty');
  await store.close();
});

test('an unknown mutator is an InvalidArgumentError; a mutator error rejects with its code and message', async () => {
  const { store, ledger } = await openLedger();
  await ledger.openAccounts(1, 2, 50);
  await assert.rejects(store.call('no_such_mutator', new Uint8Array()), (e) =>
    e instanceof InvalidArgumentError && /no_such_mutator/.test(e.message) && /transfer_batch/.test(e.message));
  await assert.rejects(ledger.transfer(1, 2, 51), (e) =>
    e instanceof InvalidArgumentError && e.code === 'invalid-argument' && /insufficient funds in account 1/.test(e.message));
  await assert.rejects(ledger.transfer(1, 99, 5), (e) =>
    e instanceof KeepstateError && e.code === 'not-found' && /no account 99/.test(e.message));
  await assert.rejects(ledger.openAccounts(2, 1, 5), (e) => e.code === 'invalid-argument' && /account 2 exists/.test(e.message));
  await assert.rejects(store.call('transfer', new Uint8Array([1, 2, 3])), (e) =>
    e instanceof InvalidArgumentError && /not a valid FlatBuffers/.test(e.message));
  await assert.rejects(store.call('', new Uint8Array()), InvalidArgumentError);
  await assert.rejects(store.call('audit', 'text'), InvalidArgumentError);
  // Failed calls applied nothing.
  assert.deepEqual([ledger.account(1).balance, ledger.account(2).balance], [50, 50]);
  assert.deepEqual(ledger.totals(), { accounts: 2, total: 100, transfers: 0, rejected: 0 });
  await store.close();
});

test('the package module registers no mutators', async () => {
  const store = await openStore(uniqueName(), { indexedDB: freshIndexedDB(), autosave: false });
  await assert.rejects(store.call('transfer', new Uint8Array()), (e) =>
    e instanceof InvalidArgumentError && /registers none/.test(e.message));
  await store.close();
  await assert.rejects(store.call('transfer', new Uint8Array()), ClosedError);
});

test('transfer_batch: 200,000 random transfers keep the invariant, match a JS model, and survive commit + reopen', async () => {
  const { store, ledger, indexedDB, name } = await openLedger();
  const accounts = 5000;
  await ledger.openAccounts(0, accounts, 1000);
  const n = 200_000;
  const { from, to, amount } = randomTransfers(n, accounts, 42);
  // The same rules in JS, applied in order.
  const model = new Array(accounts).fill(1000);
  const count = new Array(accounts).fill(0);
  let applied = 0;
  for (let i = 0; i < n; ++i) {
    if (from[i] === to[i] || model[from[i]] < amount[i]) continue;
    model[from[i]] -= amount[i];
    model[to[i]] += amount[i];
    ++count[from[i]];
    ++count[to[i]];
    ++applied;
  }
  for (let k = 0; k < 4; ++k) {
    await store.call('transfer_batch', encodeTransferBatch(from, to, amount, (k * n) / 4, ((k + 1) * n) / 4));
  }
  const totals = ledger.totals();
  assert.equal(totals.transfers, applied);
  assert.equal(totals.rejected, n - applied);
  for (const id of [0, 1, 777, 4999]) assert.deepEqual(ledger.account(id), { id, balance: model[id], transfers: count[id] });
  const audit = await ledger.audit();
  assert.equal(audit.ok, true, audit.message);
  assert.equal(audit.total, accounts * 1000);
  const { version } = await store.commit();
  await store.close();

  const again = await openStore(name, { indexedDB, module: ledgerModule, autosave: false });
  const reopened = new Ledger(again);
  assert.equal(again.version, version);
  assert.deepEqual(reopened.totals(), totals);
  assert.equal((await reopened.audit()).ok, true);
  await again.close();
});

test('concurrent calls interleave between transactions and keep the invariant', async () => {
  const { store, ledger } = await openLedger();
  await ledger.openAccounts(0, 1000, 100);
  const batches = [1, 2, 3, 4].map((seed) => randomTransfers(30_000, 1000, seed));
  const results = await Promise.all([
    ...batches.map(({ from, to, amount }) => ledger.transferBatch(from, to, amount)),
    ledger.openAccounts(1000, 10_000, 5),
  ]);
  const applied = results.slice(0, 4).reduce((n, r) => n + r.applied, 0);
  assert.deepEqual(ledger.totals(), { accounts: 11_000, total: 150_000, transfers: applied, rejected: 120_000 - applied });
  const audit = await ledger.audit();
  assert.equal(audit.ok, true, audit.message);
  await store.close();
});

test('close() lets calls in flight finish and commits their effects', async () => {
  const { store, ledger, indexedDB, name } = await openLedger();
  await ledger.openAccounts(0, 100, 10);
  const { from, to, amount } = randomTransfers(20_000, 100, 7);
  const pending = ledger.transferBatch(from, to, amount);
  await store.close();
  const { applied } = await pending;
  const again = await openStore(name, { indexedDB, module: ledgerModule, autosave: false });
  assert.equal(new Ledger(again).totals().transfers, applied);
  await again.close();
});

test('the audit detects a broken invariant', async () => {
  const { store, ledger } = await openLedger();
  await ledger.openAccounts(0, 3, 10);
  // Money from nowhere, written around the mutators: copy account 0's record over account 1's... under key 2.
  store.put(accountKey(2), store.get(accountKey(0)));
  const audit = await ledger.audit();
  assert.equal(audit.ok, false);
  assert.match(audit.message, /holds account 0/);
  await store.close();
});
