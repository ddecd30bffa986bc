// Several stores of one name, as tabs: rebase of pending work onto another
// store's commit (puts, transactions, mutator calls; a replay that fails is
// dropped and reported), following other stores' commits, and watch.
// Stores of one name in one realm share the memory backend and hear each
// other's commits as tabs do over BroadcastChannel; the IndexedDB case runs
// the same over fake-indexeddb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ConflictError, InvalidArgumentError } from '../dist/node.js';
import { freshIndexedDB, nextEvent, uniqueName } from './helpers.mjs';

const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
const { ledgerModule, Ledger } = await import(new URL('client.mjs', ledgerDir));

const open = (name, options = {}) => openStore(name, { storage: 'memory', autosave: false, ...options });
const text = (v) => (v === undefined ? undefined : new TextDecoder().decode(v));
const tick = () => new Promise((r) => setTimeout(r, 0));

/** Collects a store's watch events for `range`; `stop()` unsubscribes. */
function record(store, range) {
  const events = [];
  const stop = store.watch(range, (e) => events.push({ ...e, changes: e.changes.map((c) => [c.key, text(c.value)]) }));
  return { events, stop };
}

/** Resolves when `predicate()` holds (polled every task), or fails after `ms`. */
async function until(predicate, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('a commit that finds a newer version rebases: puts and transactions replay on it, then commit', async () => {
  for (const storage of ['memory', 'indexeddb']) {
    const name = uniqueName('rebase');
    const opts = storage === 'memory' ? { follow: false } : { storage: 'indexeddb', indexedDB: freshIndexedDB(), follow: false };
    const a = await open(name, opts);
    const b = await open(name, opts);
    a.putJSON('n', 10);
    a.put('from-a', 'a');
    await a.commit();
    b.put('from-b', 'b');
    b.transaction((tx) => tx.putJSON('n', (tx.getJSON('n') ?? 0) + 1));
    const rebased = nextEvent(b, 'rebase');
    const { version } = await b.commit();
    assert.equal(version, 2, storage);
    const { ms, ...event } = await rebased;
    assert.deepEqual(event, { fromVersion: 0, ontoVersion: 1, replayed: 2, dropped: [] });
    assert.ok(ms >= 0 && ms < 5000, String(ms));
    assert.equal(b.getJSON('n'), 11, 'the transaction ran again on the newer state');
    assert.equal(b.getText('from-a'), 'a');
    assert.equal(b.dirty, false);
    const c = await open(name, opts);
    assert.deepEqual([c.version, c.getJSON('n'), c.getText('from-a'), c.getText('from-b')], [2, 11, 'a', 'b']);
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test("onConflict: 'reject' keeps ConflictError; bad values of the new options are InvalidArgumentError", async () => {
  const name = uniqueName('reject');
  const a = await open(name, { follow: false });
  const b = await open(name, { onConflict: 'reject', follow: false });
  a.put('k', 'a');
  await a.commit();
  b.put('k', 'b');
  await assert.rejects(b.commit(), ConflictError);
  assert.equal(b.getText('k'), 'b');
  await b.reload();
  await Promise.all([a.close(), b.close()]);
  await assert.rejects(open(uniqueName(), { onConflict: 'merge' }), InvalidArgumentError);
  await assert.rejects(open(uniqueName(), { follow: 'yes' }), InvalidArgumentError);
});

test('a transaction that fails when replayed is dropped and reported; the rest commits', async () => {
  const name = uniqueName('drop');
  const a = await open(name, { follow: false });
  const b = await open(name, { follow: false });
  b.transaction((tx) => {
    if (tx.has('closed')) throw new Error('the shop is closed');
    tx.put('order', 'placed');
  });
  b.put('note', 'kept');
  a.put('closed', 'yes');
  await a.commit();
  const rebased = nextEvent(b, 'rebase');
  assert.equal((await b.commit()).version, 2);
  const event = await rebased;
  assert.equal(event.replayed, 1);
  assert.equal(event.dropped.length, 1);
  assert.equal(event.dropped[0].kind, 'transaction');
  assert.match(String(event.dropped[0].error), /the shop is closed/);
  assert.equal(b.has('order'), false, 'the dropped transaction left nothing');
  assert.equal(b.getText('note'), 'kept');
  await Promise.all([a.close(), b.close()]);
});

test('three stores with autosave increment one counter concurrently: no increment and no own key is lost', async () => {
  const name = uniqueName('three');
  const stores = await Promise.all([0, 1, 2].map(() => open(name, { autosave: 5 })));
  const N = 60;
  await Promise.all(stores.map(async (s, t) => {
    for (let i = 0; i < N; ++i) {
      s.transaction((tx) => {
        tx.putJSON('counter', (tx.getJSON('counter') ?? 0) + 1);
        tx.put(`own/${t}/${i}`, 'x');
      });
      if (i % 7 === 0) await tick();
    }
  }));
  await Promise.all(stores.map((s) => s.commit()));
  for (const s of stores) await until(() => !s.dirty, 5000, 'clean');
  const check = await open(name);
  assert.equal(check.getJSON('counter'), 3 * N);
  assert.equal(check.scan({ prefix: 'own/' }).length, 3 * N);
  // Every store converges on the stored version without reload().
  await until(() => stores.every((s) => s.version === check.version), 5000, 'convergence');
  for (const s of stores) assert.equal(s.getJSON('counter'), 3 * N);
  await Promise.all([...stores, check].map((s) => s.close()));
});

test('a mutator call rebased onto another store\'s transfers runs again and keeps the audit', async () => {
  const name = uniqueName('ledger');
  const a = await open(name, { module: ledgerModule, follow: false });
  const b = await open(name, { module: ledgerModule, follow: false });
  const la = new Ledger(a), lb = new Ledger(b);
  await la.openAccounts(0, 4, 100);
  await a.commit();
  await b.reload();
  await la.transfer(0, 1, 30);
  await a.commit();
  assert.deepEqual(await lb.transfer(1, 2, 50), { applied: 1, rejected: 0 }, 'first run, on the older state');
  const rebased = nextEvent(b, 'rebase');
  await b.commit();
  assert.deepEqual((await rebased).dropped, []);
  assert.deepEqual([lb.account(0).balance, lb.account(1).balance, lb.account(2).balance], [70, 80, 150]);
  assert.equal((await lb.audit()).ok, true);
  // A call that fails when replayed is dropped: b spends what a already spent.
  await la.transfer(3, 0, 100);
  await a.commit();
  await lb.transfer(3, 1, 60);
  const again = nextEvent(b, 'rebase');
  await b.commit();
  const event = await again;
  assert.equal(event.dropped.length, 1);
  assert.deepEqual([event.dropped[0].kind, event.dropped[0].name], ['call', 'transfer']);
  assert.match(event.dropped[0].error.message, /insufficient funds/);
  assert.equal(lb.account(3).balance, 0);
  assert.equal((await lb.audit()).ok, true);
  await Promise.all([a.close(), b.close()]);
});

test('follow: a store catches up with another\'s commits by itself, its pending work on top', async () => {
  const name = uniqueName('follow');
  const a = await open(name);
  const b = await open(name);
  const seen = record(b, { prefix: '' });
  b.put('mine', 'pending');
  await tick();
  a.put('theirs', '1');
  await a.commit();
  await until(() => b.version === 1, 5000, 'b at version 1');
  assert.equal(b.getText('theirs'), '1');
  assert.equal(b.getText('mine'), 'pending');
  assert.equal(b.dirty, true, 'the pending work is still to commit');
  await until(() => seen.events.some((e) => e.source === 'rebase'));
  assert.deepEqual(seen.events.map((e) => [e.source, e.changes]), [
    ['local', [['mine', 'pending']]],
    ['rebase', [['theirs', '1']]],
  ]);
  assert.equal((await b.commit()).version, 2);
  const c = await open(name, { follow: false });
  a.put('later', '2');
  await a.commit();
  await until(() => b.version === 3);
  await tick();
  assert.equal(c.version, 2, 'follow: false stays where it is');
  assert.equal(seen.events.at(-1).source, 'remote');
  assert.deepEqual(seen.events.at(-1).changes, [['later', '2']]);
  await Promise.all([a.close(), b.close(), c.close()]);
});

test('watch: ranges, coalescing per task, deletes, transactions and mutator calls, reload, unsubscribe', async () => {
  const name = uniqueName('watch');
  const s = await open(name, { module: ledgerModule });
  const all = record(s, {});
  const one = record(s, { key: 'b' });
  const pre = record(s, { prefix: 'user/' });
  const span = record(s, { start: 'b', end: 'd' });
  s.put('a', '1');
  s.put('b', '1');
  s.put('b', '2');
  s.put('c', '1');
  s.put('user/1', 'ann');
  s.delete('a');
  s.delete('zzz'); // did not exist: not a change
  await tick();
  assert.deepEqual(all.events, [{ changes: [['a', undefined], ['b', '2'], ['c', '1'], ['user/1', 'ann']], version: 0, source: 'local' }]);
  assert.deepEqual(one.events.map((e) => e.changes), [[['b', '2']]]);
  assert.deepEqual(pre.events.map((e) => e.changes), [[['user/1', 'ann']]]);
  assert.deepEqual(span.events.map((e) => e.changes), [[['b', '2'], ['c', '1']]]);
  s.transaction((tx) => {
    tx.put('c', '2');
    tx.delete('b');
  });
  await tick();
  assert.deepEqual(span.events.at(-1).changes, [['b', undefined], ['c', '2']]);
  // A mutator's transactions are reported too.
  const ledger = new Ledger(s);
  const before = all.events.length;
  await ledger.openAccounts(0, 2, 10);
  await tick();
  assert.ok(all.events.length > before && all.events.slice(before).every((e) => e.source === 'local'));
  assert.ok(all.events.slice(before).some((e) => e.changes.length >= 2), 'the accounts written by C++');
  await s.commit();
  s.put('c', 'uncommitted');
  await tick();
  await s.reload();
  assert.deepEqual(span.events.at(-1), { changes: [['c', '2']], version: 1, source: 'reload' });
  // Unsubscribing stops a listener at once, even within the task.
  const heard = one.events.length;
  one.stop();
  span.stop();
  s.put('b', 'again');
  await tick();
  assert.equal(one.events.length, heard);
  assert.deepEqual(all.events.at(-1).changes, [['b', 'again']]);
  assert.throws(() => s.watch({ key: 1 }, () => {}), InvalidArgumentError);
  assert.throws(() => s.watch({ key: 'a', prefix: 'b' }, () => {}), InvalidArgumentError);
  assert.throws(() => s.watch({ nope: 'x' }, () => {}), InvalidArgumentError);
  assert.throws(() => s.watch({}, 'not a function'), InvalidArgumentError);
  await s.close();
});

test('catching up reads only the packs of what changed, not the whole state', async () => {
  const { IDBObjectStore } = await import('fake-indexeddb');
  const idb = freshIndexedDB();
  const name = uniqueName('delta');
  const opts = { storage: 'indexeddb', indexedDB: idb };
  const a = await open(name, { ...opts, follow: false });
  const value = (i) => new Uint8Array(4096).fill(i & 255);
  for (let i = 0; i < 2048; ++i) a.put(`v/${i}`, value(i)); // 8 MiB and more of pages
  await a.commit();
  const b = await open(name, opts);
  const seen = record(b, { prefix: 'v/' });
  const read = { bytes: 0 };
  const { get } = IDBObjectStore.prototype;
  IDBObjectStore.prototype.get = function (key) {
    const req = get.call(this, key);
    if (this.name === 'packs') req.addEventListener('success', () => { read.bytes += req.result?.size ?? req.result?.length ?? 0; });
    return req;
  };
  try {
    a.put('v/7', 'changed');
    await a.commit();
    await until(() => b.version === 2, 5000, 'b follows');
  } finally {
    IDBObjectStore.prototype.get = get;
  }
  assert.equal(b.getText('v/7'), 'changed');
  assert.deepEqual(seen.events.map((e) => [e.source, e.changes]), [['remote', [['v/7', 'changed']]]]);
  assert.ok(read.bytes > 0 && read.bytes < 64 * 1024, `the catch-up read ${read.bytes} pack bytes of a state of over 8 MiB`);
  // And the state is exactly what a full open restores.
  const c = await open(name, { ...opts, follow: false });
  assert.deepEqual(b.scan(), c.scan());
  await Promise.all([a.close(), b.close(), c.close()]);
});

test('catching up leaves unread the manifests the store holds decoded: a small change reads a small manifest', async () => {
  const { IDBObjectStore } = await import('fake-indexeddb');
  const idb = freshIndexedDB();
  const name = uniqueName('manifests');
  const opts = { storage: 'indexeddb', indexedDB: idb };
  const a = await open(name, { ...opts, follow: false });
  for (let i = 0; i < 4096; ++i) a.put(`v/${i}`, new Uint8Array(4000).fill(i & 255)); // version 1: a full manifest of 4096+ pages
  await a.commit();
  const b = await open(name, opts);
  const stored = { bytes: 0 };
  const read = { bytes: 0 };
  const { getAll } = IDBObjectStore.prototype;
  IDBObjectStore.prototype.getAll = function (...args) {
    const req = getAll.apply(this, args);
    if (this.name === 'manifests') req.addEventListener('success', () => { read.bytes += req.result.reduce((n, v) => n + v.length, 0); });
    return req;
  };
  const perCatchUp = [];
  try {
    for (let i = 1; i <= 4; ++i) {
      a.put('v/7', `change ${i}`);
      await a.commit();
      read.bytes = 0;
      await until(() => b.version === 1 + i, 5000, 'b follows');
      perCatchUp.push(read.bytes);
    }
  } finally {
    IDBObjectStore.prototype.getAll = getAll;
  }
  const all = await new Promise((resolve, reject) => {
    const req = idb.open(`keepstate:${name}`);
    req.onsuccess = () => {
      const r = req.result.transaction('manifests').objectStore('manifests').getAll();
      r.onsuccess = () => { req.result.close(); resolve(r.result); };
      r.onerror = () => reject(r.error);
    };
    req.onerror = () => reject(req.error);
  });
  stored.bytes = all.reduce((n, v) => n + v.length, 0);
  const full = Math.max(...all.map((v) => v.length)); // version 1's full manifest
  assert.ok(full > 64 * 1024, `the full manifest is ${full} bytes`);
  // Once version 1 is no longer a retained version of its own, its manifest is not read again.
  assert.ok(perCatchUp.at(-1) < 8 * 1024, `manifest bytes read per catch-up: ${perCatchUp} (stored: ${stored.bytes})`);
  assert.equal(b.getText('v/7'), 'change 4');
  const c = await open(name, { ...opts, follow: false });
  assert.deepEqual(b.scan(), c.scan());
  await Promise.all([a.close(), b.close(), c.close()]);
});

test('a write that lands while a clean store catches up in place makes it catch up by copying instead: nothing is lost', async () => {
  const name = uniqueName('inplace');
  const a = await open(name, { follow: false });
  const b = await open(name);
  const seen = record(b, {});
  a.put('first', '1');
  await a.commit();
  await until(() => b.version === 1);
  assert.equal(b.getText('first'), '1');
  a.put('second', '2');
  await a.commit();
  b.put('mine', 'written during the catch-up'); // b's catch-up has started and is reading
  await until(() => b.version === 2);
  assert.deepEqual([b.getText('second'), b.getText('mine'), b.dirty], ['2', 'written during the catch-up', true]);
  assert.deepEqual(seen.events.map((e) => e.source), ['remote', 'local', 'rebase']);
  assert.deepEqual(seen.events.at(-1).changes, [['second', '2']]);
  assert.equal((await b.commit()).version, 3);
  await Promise.all([a.close(), b.close()]);
});
