// The pool of read replicas (pool.ts, reader.ts, replica-host.ts), in Node:
// mode 'inline' (each replica a module instance of its own in this realm,
// reached through the same structured-cloned messages as a Worker; Node's
// worker_threads are not used: a Worker there would need its own
// fake-indexeddb, which cannot see this one). The stores are on
// fake-indexeddb: a replica opens the store's database itself and hears
// commits on the store's BroadcastChannel, as in a browser. The browser
// behaviour (Workers, parallelism) is e2e/specs/pool.spec.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { openStore, openPool, ClosedError, KeepstateError, ReplicaLostError, InvalidArgumentError } from '../dist/node.js';
import { freshIndexedDB, uniqueName } from './helpers.mjs';

const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
assert.ok(existsSync(new URL('client.mjs', ledgerDir)), 'build the wasm-release preset first (make test-js does)');
const { ledgerModule, Ledger, accountKey, decodeAuditReport, decodeAccount, encodeAccountRef, encodeTransferBatch } = await import(
  new URL('client.mjs', ledgerDir)
);
const queries = new URL('./support/pool-queries.mjs', import.meta.url);

async function openLedger(accounts = 2000) {
  const indexedDB = freshIndexedDB();
  const store = await openStore(uniqueName('pool'), { indexedDB, module: ledgerModule, autosave: false });
  const ledger = new Ledger(store);
  await ledger.openAccounts(0, accounts, 1000);
  await store.commit();
  return { store, ledger, indexedDB };
}

/** Random transfers (deterministic by seed) among `accounts` accounts, as one transfer_batch. */
async function transfers(store, n, accounts, seed) {
  let x = seed >>> 0 || 1;
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>>= 0));
  const from = [], to = [], amount = [];
  for (let i = 0; i < n; ++i) {
    from.push(next() % accounts);
    to.push(next() % accounts);
    amount.push(1 + (next() % 300));
  }
  await store.call('transfer_batch', encodeTransferBatch(from, to, amount));
}

const until = async (what, fn, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('a C++ query and a JS query on the pool answer what the writer reads at the same version', async () => {
  const { store, ledger } = await openLedger(3000);
  const pool = await openPool(store, { mode: 'inline', queries, max: 2 });
  for (let round = 0; round < 3; ++round) {
    await transfers(store, 5000, 3000, round + 1);
    const { version } = await store.commit();
    const [audit, balance, sums, some] = await Promise.all([
      pool.call('audit'),
      pool.call('balance', encodeAccountRef(17)),
      pool.call('sumBalances'),
      pool.call('balances', [0, 17, 2999, 3000]),
    ]);
    for (const a of [audit, balance, sums, some]) assert.equal(a.version, version, 'read at the version committed when called');
    assert.deepEqual(decodeAuditReport(audit.result), await ledger.audit(), 'the replica\'s audit is the writer\'s');
    assert.ok(decodeAuditReport(audit.result).ok);
    assert.deepEqual(decodeAccount(balance.result), ledger.account(17));
    assert.deepEqual(sums.result, { total: 3000 * 1000, accounts: 3000, version });
    assert.deepEqual(some.result, [0, 17, 2999].map((id) => ledger.account(id).balance).concat([null]));
  }
  pool.close();
  await store.close();
});

test('uncommitted writes are not visible; minVersion waits for a commit; the replica follows in place', async () => {
  const { store } = await openLedger(100);
  const pool = await openPool(store, { mode: 'inline', queries, min: 1 });
  const v1 = store.version;
  store.put('note', 'draft');
  const before = await pool.call('read', 'note');
  assert.deepEqual(before, { version: v1, result: { text: undefined, has: false, json: null }, waitMs: before.waitMs });
  assert.ok(before.waitMs >= 0, 'an answer says its queue wait');
  // A query asking for the next version waits until it is committed.
  const later = pool.call('read', 'note', { minVersion: v1 + 1 });
  await new Promise((r) => setTimeout(r, 50));
  await store.commit();
  const late = await later;
  assert.deepEqual(late, { version: v1 + 1, result: { text: 'draft', has: true, json: null }, waitMs: late.waitMs });
  // Followed by notice: the replica is at the new version without a query asking.
  store.putJSON('json:n', { n: 2 });
  await store.commit();
  await until('the replica to follow', () => pool.stats().list[0]?.version === v1 + 2);
  assert.deepEqual((await pool.call('read', 'json:n', { minVersion: 0 })).result.json, { n: 2 });
  const { coldStartMs, followMs } = pool.stats();
  assert.ok(coldStartMs > 0 && followMs > 0, JSON.stringify({ coldStartMs, followMs }));
  pool.close();
  await store.close();
});

test('queries are read-only: a C++ query that writes fails with unsupported, a JS one has no put; nothing is written', async () => {
  const { store } = await openLedger(10);
  const pool = await openPool(store, { mode: 'inline', queries });
  await assert.rejects(pool.call('query_that_writes'), (e) => e instanceof KeepstateError && e.code === 'unsupported' && /query "query_that_writes" is read-only/.test(e.message));
  await assert.rejects(pool.call('tryWrite'), (e) => e.code === 'internal' && /TypeError/.test(e.message));
  await assert.rejects(pool.call('returnsPromise'), (e) => e instanceof InvalidArgumentError && /not a promise/.test(e.message));
  await assert.rejects(pool.call('no_such_query'), (e) => e instanceof InvalidArgumentError && /no query named "no_such_query"/.test(e.message));
  await assert.rejects(pool.call('audit', { not: 'bytes' }), InvalidArgumentError);
  assert.equal(store.has('written-by-a-query'), false);
  const before = store.version;
  await store.reload();
  assert.equal(store.version, before, 'no replica committed anything');
  assert.equal(store.has('written-by-a-query'), false);
  pool.close();
  await store.close();
});

test('the pool grows when queries wait longer than scaleUpWaitMs and shrinks after idleMs', async () => {
  const { store } = await openLedger(10);
  const pool = await openPool(store, { mode: 'inline', queries, max: 3, windowMs: 200, idleMs: 300, scaleUpWaitMs: 40 });
  const steps = [];
  pool.on('scale', (s) => steps.push(s));
  const answers = await Promise.all(Array.from({ length: 12 }, () => pool.call('slow', 30)));
  assert.ok(answers.every((a) => a.result === store.version));
  assert.equal(steps[0].reason, 'first query');
  const ups = steps.filter((s) => s.direction === 'up' && /^queue wait \d+ ms > 40 ms$/.test(s.reason));
  assert.ok(ups.length >= 1 && ups.length <= 2, JSON.stringify(steps));
  assert.ok(Math.max(...steps.map((s) => s.replicas)) <= 3);
  await until('idle replicas to go', () => pool.stats().replicas === 0, 3000);
  const downs = steps.filter((s) => s.direction === 'down');
  assert.ok(downs.length >= 2 && downs.every((s) => /^idle \d+ ms >= 300 ms$/.test(s.reason)), JSON.stringify(downs));
  const stats = pool.stats();
  assert.equal(stats.answered, 12);
  assert.equal(stats.queued, 0);
  pool.close();
  await store.close();
});

test('the memory budget caps the replicas: each holds a copy of the state', async () => {
  const { store } = await openLedger(10);
  const pool = await openPool(store, { mode: 'inline', queries, max: 3, windowMs: 100, scaleUpWaitMs: 1, memoryBudget: 1 });
  const answers = await Promise.all(Array.from({ length: 6 }, () => pool.call('slow', 20)));
  // One replica in turn: each query waited for those before it (inline, one after another).
  for (const [i, a] of answers.entries()) assert.ok(a.waitMs >= i * 20 - 1, `query ${i} waited ${a.waitMs} ms`);
  const stats = pool.stats();
  assert.ok(stats.replicaBytes > 0);
  assert.equal(stats.steps.filter((s) => s.direction === 'up').length, 1, 'only the first replica: a second would pass the budget');
  pool.close();
  await store.close();
});

test('a replica terminated mid-query is replaced and its query answered elsewhere; retries: 0 rejects it typed', async () => {
  const { store } = await openLedger(10);
  const pool = await openPool(store, { mode: 'inline', queries, max: 1, min: 1 });
  await until('the replica to start', () => pool.stats().list[0]?.state === 'idle');
  const answer = pool.call('sumBalances');
  assert.equal(pool.stats().busy, 1, 'dispatched at once to the idle replica');
  const [victim] = pool.stats().list;
  assert.equal(pool.terminateReplica(victim.id), true);
  assert.deepEqual((await answer).result, { total: 10_000, accounts: 10, version: store.version });
  const stats = pool.stats();
  assert.equal(stats.rerun, 1);
  assert.ok(stats.steps.some((s) => s.direction === 'up' && s.reason.startsWith('replace: replica')));
  assert.ok(!stats.list.some((s) => s.id === victim.id));
  pool.close();

  const strict = await openPool(store, { mode: 'inline', queries, retries: 0, min: 1 });
  await until('the replica to start', () => strict.stats().list[0]?.state === 'idle');
  const lost = strict.call('slow', 10);
  assert.equal(strict.stats().busy, 1);
  strict.terminateReplica(strict.stats().list[0].id);
  await assert.rejects(lost, (e) => e instanceof ReplicaLostError && e.code === 'closed' && /was terminated/.test(e.message));
  assert.deepEqual((await strict.call('read', 'x')).result.has, false, 'the replacement answers');
  strict.close();
  await store.close();
});

test('writes and commits go on while the pool works; closing the store closes the pool', async () => {
  const { store, ledger } = await openLedger(500);
  const pool = await openPool(store, { mode: 'inline', queries, max: 2 });
  const running = Array.from({ length: 6 }, () => pool.call('audit'));
  for (let i = 0; i < 3; ++i) {
    await transfers(store, 200, 500, 10 + i);
    await store.commit();
  }
  for (const a of await Promise.all(running)) assert.ok(decodeAuditReport(a.result).ok);
  assert.equal((await pool.call('audit')).version, store.version);
  assert.ok((await ledger.audit()).ok);
  const queued = pool.call('slow', 50);
  await store.close();
  await assert.rejects(queued, ClosedError);
  await assert.rejects(pool.call('audit'), ClosedError);
  assert.equal(pool.stats().replicas, 0);
});
