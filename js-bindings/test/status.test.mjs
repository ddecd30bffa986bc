// A store's own status (version, dirty, closed) for a UI: storeStatus,
// watchStatus, and keepstate/react's hooks over it (useStoreStatus,
// useScanJSON), including what the hooks render once the store is closed.
// The hooks' updates in a browser are in e2e/specs/react.spec.ts (the todo
// example shows "saved, version N" through useStoreStatus).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { openStore, storeStatus, watchStatus } from '../dist/node.js';
import { useJSON, useScan, useScanJSON, useStoreStatus, useText } from '../dist/react.js';
import { uniqueName } from './helpers.mjs';

const open = (name, options = {}) => openStore(name, { storage: 'memory', autosave: false, ...options });
const flush = () => new Promise((r) => setTimeout(r, 0));

/** Resolves when `predicate()` holds (polled every task), or fails after `ms`. */
async function until(predicate, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('watchStatus: one call per run of writes, then on commit, on another store\'s commit followed, on reload and on close', async () => {
  const name = uniqueName('status');
  const a = await open(name);
  const b = await open(name, { follow: false });
  assert.deepEqual(storeStatus(a), { version: 0, dirty: false, closed: false });
  const heard = [];
  watchStatus(a, (s) => heard.push(s));

  for (let i = 0; i < 100; ++i) a.put(`k${i}`, 'v');
  assert.deepEqual(heard, [], 'nothing before the writing code returns');
  await flush();
  assert.deepEqual(heard, [{ version: 0, dirty: true, closed: false }], 'a hundred puts: one call');

  a.put('k0', 'again'); // still dirty at version 0: no change, no call
  await flush();
  assert.equal(heard.length, 1);

  await a.commit();
  await flush();
  assert.deepEqual(heard.at(-1), { version: 1, dirty: false, closed: false });

  // Another store of the name commits; `a` follows it (catch-up, no pending work).
  await b.reload();
  b.put('from-b', 'x');
  await b.commit();
  await until(() => heard.at(-1).version === 2, 5000, 'a follows b to version 2');
  assert.deepEqual(heard.at(-1), { version: 2, dirty: false, closed: false });

  // reload() drops pending work: dirty goes back to false.
  a.put('dropped', 'x');
  await flush();
  assert.deepEqual(heard.at(-1), { version: 2, dirty: true, closed: false });
  await a.reload();
  await flush();
  assert.deepEqual(heard.at(-1), { version: 2, dirty: false, closed: false });

  const before = heard.length;
  await a.close();
  await flush();
  assert.deepEqual(heard.slice(before), [{ version: 2, dirty: false, closed: true }], 'close: told once');
  assert.deepEqual(storeStatus(a), { version: 2, dirty: false, closed: true }, 'readable after close');
  const late = [];
  const stop = watchStatus(a, (s) => late.push(s));
  stop();
  await flush();
  assert.deepEqual(late, [], 'watching a closed store is a no-op');
  await b.close();
});

test('watchStatus: the stop function stops it; a rebase of pending work is heard', async () => {
  const name = uniqueName('status-rebase');
  const a = await open(name, { follow: false });
  const b = await open(name, { follow: false });
  const heard = [];
  const stop = watchStatus(a, (s) => heard.push(s));
  a.put('mine', '1');
  b.put('theirs', '1');
  await b.commit();
  await a.commit(); // conflict: rebases onto b's version 1, then commits version 2
  await flush();
  assert.deepEqual(heard.at(-1), { version: 2, dirty: false, closed: false });
  assert.equal(a.getText('theirs'), '1');
  stop();
  const n = heard.length;
  a.put('after', 'stop');
  await flush();
  assert.equal(heard.length, n, 'nothing after stop()');
  await a.close();
  await b.close();
});

function render(component) {
  return renderToString(createElement(component));
}

test('useStoreStatus and useScanJSON render the store\'s state; every hook renders a closed store without throwing', async () => {
  const store = await open(uniqueName('hooks'));
  store.putJSON('todo/1', { title: 'milk', done: false });
  store.putJSON('todo/2', { title: 'bread', done: true });
  store.put('note', 'hello');
  await store.commit();
  store.put('note', 'hello again');

  const View = () => {
    const { version, dirty, closed } = useStoreStatus(store);
    const todos = useScanJSON(store, { prefix: 'todo/' });
    const raw = useScan(store, { prefix: 'todo/' });
    const one = useJSON(store, 'todo/1');
    const note = useText(store, 'note');
    return createElement('p', null,
      `v${version} ${dirty ? 'dirty' : 'clean'} ${closed ? 'closed' : 'open'}|` +
      `${todos.map(([k, t]) => `${k}=${t.title}${t.done ? '+' : ''}`).join(',')}|${raw.length}|${one?.title}|${note}`);
  };
  assert.equal(render(View), '<p>v1 dirty open|todo/1=milk,todo/2=bread+|2|milk|hello again</p>');

  await store.close();
  // A component rendered after close (e.g. mounted by a late state update) does not throw:
  // the status says closed at the last version, the reads have nothing to show.
  assert.equal(render(View), '<p>v2 clean closed||0|undefined|undefined</p>');
});

test('useScanJSON names the key whose value is not JSON', async () => {
  const store = await open(uniqueName('hooks-bad'));
  store.put('todo/1', 'not json');
  const View = () => createElement('p', null, String(useScanJSON(store, { prefix: 'todo/' }).length));
  assert.throws(() => render(View), /useScanJSON: the value of "todo\/1" is not JSON/);
  await store.close();
});
