// The pending log's lazy blind writes (pending.ts): a put or delete is logged
// by its key, its value read from the state only when something else is about
// to write the key, or before a rebase. What a user relies on: a rebase
// replays exactly what was done, in order, whatever came after each write.
// Each case: store b does its work on version 0, store a commits first, b's
// commit rebases onto it (follow off, so the rebase happens at b's commit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../dist/node.js';
import { nextEvent, uniqueName } from './helpers.mjs';

const open = (name) => openStore(name, { storage: 'memory', autosave: false, follow: false });

/** Runs `work(b)` on a store behind another's commit, then b's commit (a rebase); returns b, a fresh store's view, and the rebase event. */
async function rebased(work) {
  const name = uniqueName('lazy');
  const a = await open(name);
  const b = await open(name);
  a.put('from-a', 'a');
  await a.commit();
  await work(b);
  const event = nextEvent(b, 'rebase');
  await b.commit();
  const rebase = await event;
  const c = await open(name);
  const close = () => Promise.all([a.close(), b.close(), c.close()]);
  return { b, c, rebase, close };
}

test('a transaction that reads and rewrites a put key replays on the value that was put', async () => {
  const { b, c, rebase, close } = await rebased((b) => {
    b.put('n', '1');
    b.transaction((tx) => tx.put('n', String(Number(tx.getText('n')) * 10)));
  });
  assert.deepEqual(rebase.dropped, []);
  for (const s of [b, c]) assert.deepEqual([s.getText('n'), s.getText('from-a')], ['10', 'a']);
  await close();
});

test('a put after a transaction that read the key: the transaction replays on the earlier value', async () => {
  const { b, c, close } = await rebased((b) => {
    b.put('k', '1');
    b.transaction((tx) => tx.put('copy', tx.getText('k')));
    b.put('k', '2');
    b.delete('gone');
  });
  for (const s of [b, c]) assert.deepEqual([s.getText('copy'), s.getText('k')], ['1', '2']);
  await close();
});

test('deletes: a deleted key stays deleted, a transaction after it reads it absent', async () => {
  const name = uniqueName('lazy-delete');
  const a = await open(name);
  a.put('z', 'stored');
  await a.commit();
  const b = await open(name);
  b.delete('z');
  b.put('d', '1');
  b.delete('d');
  b.transaction((tx) => tx.put('z-was', tx.has('z') ? 'there' : 'absent'));
  b.put('z', 'again');
  a.put('other', 'x');
  await a.commit();
  await b.commit();
  assert.deepEqual([b.getText('z-was'), b.getText('z'), b.has('d'), b.getText('other')], ['absent', 'again', false, 'x']);
  await Promise.all([a.close(), b.close()]);
});

test('the caller reusing its array after put changes nothing, before or after a rebase', async () => {
  const buf = new Uint8Array([1, 2, 3]);
  const { b, c, close } = await rebased((b) => {
    b.put('bytes', buf);
    buf.fill(9);
    b.transaction((tx) => tx.put('seen', tx.get('bytes')));
    buf.fill(7);
  });
  for (const s of [b, c]) assert.deepEqual([[...s.get('bytes')], [...s.get('seen')]], [[1, 2, 3], [1, 2, 3]]);
  await close();
});

test('a failed transaction between puts of one key leaves the last put', async () => {
  const { b, c, close } = await rebased((b) => {
    b.put('k', '1');
    assert.throws(() => b.transaction((tx) => {
      tx.put('k', 'never');
      throw new Error('rolled back');
    }), /rolled back/);
    b.put('k', '2');
    b.transaction((tx) => tx.put('after', tx.getText('k')));
  });
  for (const s of [b, c]) assert.deepEqual([s.getText('k'), s.getText('after')], ['2', '2']);
  await close();
});

test('writes after a commit captured (a second run of puts) and a key written thousands of times', async () => {
  const name = uniqueName('lazy-seal');
  const a = await open(name);
  const b = await open(name);
  a.put('from-a', 'a');
  await a.commit();
  b.put('k', '1');
  for (let i = 0; i < 5000; ++i) b.put('hot', String(i));
  const first = b.commit(); // captures now; its write finds a's version and rebases
  b.put('k', '2');
  b.transaction((tx) => tx.put('k-then', tx.getText('k')));
  b.put('hot', 'last');
  await first;
  assert.deepEqual([b.getText('k'), b.getText('k-then'), b.getText('hot'), b.getText('from-a')], ['2', '2', 'last', 'a']);
  await b.commit();
  const c = await open(name);
  assert.deepEqual([c.getText('k'), c.getText('k-then'), c.getText('hot')], ['2', '2', 'last']);
  await Promise.all([a.close(), b.close(), c.close()]);
});

test('two rebases in a row keep the earlier writes exact', async () => {
  const name = uniqueName('lazy-twice');
  const a = await open(name);
  const b = await open(name);
  b.put('k', '1');
  b.transaction((tx) => tx.put('double', String(2 * Number(tx.getText('k')))));
  a.put('a1', 'x');
  await a.commit();
  b.put('k', '5');
  const p = b.commit();
  await p;
  a.put('a2', 'y');
  await a.reload();
  a.put('a3', 'z');
  await a.commit();
  b.transaction((tx) => tx.put('triple', String(3 * Number(tx.getText('k')))));
  await b.commit();
  assert.deepEqual([b.getText('k'), b.getText('double'), b.getText('triple'), b.getText('a3')], ['5', '2', '15', 'z']);
  await Promise.all([a.close(), b.close()]);
});
