// Bad input and misuse get a typed error that says what was wrong, cost no
// wasm memory, and leave the store usable (issue 23, findings 3, 4, 5, 12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, importStore, ClosedError, InvalidArgumentError, KeepstateError, QuotaError } from '../dist/node.js';
import { loadWasm } from '../dist/wasm.js';
import { mapStorage } from './support/map-backend.mjs';
import { nextEvent, uniqueName } from './helpers.mjs';

const open = (options = {}) => openStore(uniqueName('misuse'), { storage: 'memory', autosave: false, ...options });

test('oversized keys, values, args and scan bounds are refused before anything is copied into wasm memory', async () => {
  const wasm = await loadWasm();
  const s = await open();
  const other = await open();
  other.put('k', 'v');
  const memory = wasm.module.HEAPU8.length;
  const big = new Uint8Array(16 * 1024 * 1024 + 1);
  assert.throws(() => s.put('k', big), (e) => e instanceof InvalidArgumentError && /16777217 bytes/.test(e.message));
  assert.throws(() => s.put('k', 'x'.repeat(16 * 1024 * 1024 + 1)), InvalidArgumentError);
  assert.throws(() => s.put('k', '中'.repeat(6 * 1024 * 1024)), /longer than 16777216 bytes in UTF-8/); // 18 MiB of UTF-8
  assert.throws(() => s.put('k'.repeat(1025), 'v'), /key is longer than 1024 bytes/);
  assert.throws(() => s.get('k'.repeat(100_000)), InvalidArgumentError);
  assert.throws(() => s.scan({ start: 's'.repeat(5000) }), /scan: start is longer/);
  await assert.rejects(s.call('transfer', big), /args are 16777217 bytes/);
  assert.equal(wasm.module.HEAPU8.length, memory, 'no wasm memory was taken for a refused input');
  // The store and the others in the realm are intact.
  s.put('k', new Uint8Array(16 * 1024 * 1024)); // the limit itself is allowed
  assert.equal(s.get('k').length, 16 * 1024 * 1024);
  assert.ok(wasm.scratchSize <= 1 << 20, `the scratch buffer gave the 16 MiB back (${wasm.scratchSize})`);
  assert.equal(other.getText('k'), 'v');
  await Promise.all([s.close(), other.close()]);
});

test('transaction(async fn) is refused and the rest of fn does not reject unhandled', async () => {
  const s = await open();
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    assert.throws(
      () => s.transaction(async (tx) => {
        await null;
        tx.put('late', 'x'); // the transaction has ended: this throws inside the promise
      }),
      (e) => e instanceof InvalidArgumentError && /must be synchronous/.test(e.message),
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
    assert.equal(s.has('late'), false);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  await s.close();
});

test('a watch listener that writes into its own range does not starve the event loop', async () => {
  const s = await open();
  let rounds = 0;
  const stop = s.watch({ prefix: 'n' }, () => {
    ++rounds;
    s.put('n', String(rounds)); // writes into its own range: would loop on microtasks forever
  });
  s.put('n', 'start');
  await new Promise((r) => setTimeout(r, 0)); // a timer runs: the loop yields to the event loop
  const seen = rounds;
  stop();
  assert.ok(seen >= 1 && seen < 50, `the listener ran ${seen} times before a timer could run`);
  await s.close();
});

test('transaction() of something that is not a function is an InvalidArgumentError, and the store goes on', async () => {
  const s = await open();
  for (const fn of [42, undefined, null, 'tx => 1', {}]) {
    assert.throws(() => s.transaction(fn), (e) => e instanceof InvalidArgumentError && /fn must be a function/.test(e.message), String(fn));
  }
  s.transaction((tx) => tx.put('k', 'v'));
  assert.equal(s.getText('k'), 'v');
  assert.equal((await s.commit()).version, 1, 'nothing of the refused calls was logged for a replay');
  await s.close();
});

test('putJSON with a key that is not a string is an InvalidArgumentError about the key, whatever the value', async () => {
  const s = await open();
  for (const key of [12n, Symbol('k'), 1, null, undefined, {}]) {
    for (const value of [undefined, { a: 1 }, 10n]) {
      assert.throws(() => s.putJSON(key, value), (e) => e instanceof InvalidArgumentError && /key must be a string/.test(e.message), `${typeof key}, ${typeof value}`);
      assert.throws(() => s.transaction((tx) => tx.putJSON(key, value)), (e) => e instanceof InvalidArgumentError && /key must be a string/.test(e.message));
    }
  }
  assert.deepEqual(s.scan(), []);
  assert.equal(s.dirty, false);
  await s.close();
});

test('store.put inside transaction(fn) says to use tx.put; JSON errors name the key', async () => {
  const s = await open();
  assert.throws(() => s.transaction(() => s.put('k', 'v')), (e) => e instanceof KeepstateError && /tx\.put/.test(e.message));
  assert.equal(s.has('k'), false);
  assert.throws(() => s.putJSON('big', { n: 10n }), (e) => e instanceof InvalidArgumentError && /putJSON\("big"\)/.test(e.message));
  s.put('text', 'not json {');
  assert.throws(() => s.getJSON('text'), (e) => e instanceof KeepstateError && e.code === 'invalid-argument' && /getJSON\("text"\)/.test(e.message));
  await s.close();
});

test("bad names and options: '.', '..', a misspelt option, autosave Infinity are InvalidArgumentError", async () => {
  for (const name of ['.', '..']) await assert.rejects(openStore(name, { storage: 'memory' }), InvalidArgumentError);
  await assert.rejects(openStore('x', { storage: 'memory', autoSave: 5 }), /unknown option "autoSave" \(did you mean "autosave"\?\)/);
  await assert.rejects(openStore('x', { storage: 'memory', autosave: Infinity }), /autosave must be a number of ms/);
});

test('close() is idempotent: a second call, during or after the first, resolves', async () => {
  const s = await open();
  s.put('k', 'v');
  const [a, b] = [s.close(), s.close()];
  await Promise.all([a, b]);
  await s.close();
  assert.throws(() => s.get('k'), ClosedError);
});

test('autosave failures reach the app as error events and retry with backoff while the store stays dirty', async () => {
  const storage = mapStorage();
  let failures = 3;
  const backend = storage.backend();
  const write = backend.writeCommit;
  backend.writeCommit = async (...args) => {
    if (failures > 0) {
      --failures;
      throw new TypeError('the disk is full (simulated, not a DOMException)');
    }
    return write(...args);
  };
  const s = await openStore(uniqueName('misuse'), { storage: backend, autosave: 10 });
  const errors = [];
  s.on('error', (e) => errors.push(e));
  const committed = nextEvent(s, 'commit', 5000);
  s.put('k', 'v'); // one write; nothing else happens after it
  const result = await committed;
  assert.equal(result.version, 1);
  assert.equal(errors.length, 3);
  for (const e of errors) {
    assert.ok(e instanceof KeepstateError, 'wrapped in a typed error');
    assert.equal(e.code, 'internal');
    assert.ok(e.cause instanceof TypeError);
  }
  assert.equal(s.dirty, false);
  await s.close();
});

test('a background failure with no error listener is reported, not dropped', async () => {
  const storage = mapStorage();
  const backend = storage.backend();
  backend.writeCommit = async () => {
    throw new QuotaError('full (simulated)');
  };
  const s = await openStore(uniqueName('misuse'), { storage: backend, autosave: 5 });
  const reported = [];
  const original = console.error;
  console.error = (e) => reported.push(e);
  try {
    s.put('k', 'v');
    await new Promise((r) => setTimeout(r, 60));
  } finally {
    console.error = original;
  }
  assert.ok(reported.length >= 1 && reported[0] instanceof QuotaError, String(reported[0]));
  backend.writeCommit = storage.backend().writeCommit;
  await s.close();
});

test('a commit that changed no page (a transaction deleting a missing key) restores, and is not reported corrupt', async () => {
  const name = uniqueName('misuse');
  const s = await openStore(name, { storage: 'memory', autosave: false });
  s.put('x', 'y');
  await s.commit();
  s.transaction((tx) => tx.delete('missing'));
  assert.equal((await s.commit()).version, 2);
  await s.close();
  const again = await openStore(name, { storage: 'memory', autosave: false });
  let corruption = null;
  again.on('corruption', (e) => (corruption = e));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(again.version, 2);
  assert.equal(corruption, null);
  assert.equal(again.getText('x'), 'y');
  await again.close();
});

test('export() of a new store with nothing pending writes the empty state (a backup on a fresh install)', async () => {
  const s = await open();
  assert.equal(s.version, 0);
  const file = await s.export();
  assert.ok(file.size > 0);
  const copy = await importStore(uniqueName('misuse'), file, { storage: 'memory', autosave: false });
  assert.deepEqual(copy.scan(), []);
  await Promise.all([s.close(), copy.close()]);
});

test('an empty transaction after an import that freed pages commits what it changed: export() afterwards works', async () => {
  const name = uniqueName('misuse');
  const options = { storage: 'memory', autosave: false };
  const empty = await (await openStore(uniqueName('misuse'), options)).export();
  let s = await openStore(name, options);
  s.put('big', new Uint8Array(200_000));
  await s.close();
  s = await importStore(name, empty, { ...options, replace: true }); // a smaller state: the pages beyond are free
  s.transaction(() => undefined); // commits nothing, but the engine returns the free tail
  const file = await s.export();
  assert.ok(file.size > 0);
  await s.close();
});

test('an allocation the module refuses is a QuotaError, and nothing else is touched (export with no memory left)', async () => {
  const wasm = await loadWasm();
  const s = await open();
  s.put('k', 'v');
  await s.commit();
  const malloc = wasm.module._malloc;
  wasm.module._malloc = () => 0; // as when memory cannot grow
  try {
    await assert.rejects(s.export(), (e) => e instanceof QuotaError && /cannot allocate/.test(e.message));
  } finally {
    wasm.module._malloc = malloc;
  }
  s.put('k', 'v2');
  assert.equal((await s.commit()).version, 2, 'the store and the module are intact');
  assert.ok((await s.export()).size > 0);
  await s.close();
});
