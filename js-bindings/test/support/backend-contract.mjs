// The store's backend contract, as behaviours a user relies on: one suite
// that every StorageBackend passes — IndexedDB (fake-indexeddb), memory, and
// an app's own (support/map-backend.mjs) — run by contract.test.mjs.
//
// `kind.open(name, options)` opens store `name` on the backend under test (two
// opens of one name share its storage, as two tabs do); `kind.stored(name)`,
// where the test can see them, gives the bytes it stores for that name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError } from '../../dist/node.js';
import { nextEvent, uniqueName } from '../helpers.mjs';

export function backendContract(label, kind) {
  const open = (name, options = {}) => kind.open(name, { autosave: false, ...options });

  test(`${label}: commits reopen exactly as committed; uncommitted work is dropped by reload`, async () => {
    const name = uniqueName('contract');
    const a = await open(name);
    for (let i = 0; i < 200; ++i) a.put(`k${String(i).padStart(3, '0')}`, `v${i}`.repeat(i % 7 + 1));
    assert.equal((await a.commit()).version, 1);
    a.delete('k000');
    a.put('big', new Uint8Array(300_000).fill(7));
    assert.equal((await a.commit()).version, 2);
    a.put('k001', 'uncommitted');
    await a.reload();
    assert.equal(a.getText('k001'), 'v1v1');
    await a.close();
    const b = await open(name);
    assert.equal(b.version, 2);
    assert.equal(b.has('k000'), false);
    assert.equal(b.get('big').length, 300_000);
    assert.equal(b.scan({ prefix: 'k' }).length, 199);
    await b.close();
  });

  test(`${label}: two stores of one name: the second commit conflicts (reject), rebases (default), and hears the first`, async () => {
    const name = uniqueName('contract');
    const a = await open(name, { follow: false });
    const b = await open(name, { follow: false, onConflict: 'reject' });
    const heard = nextEvent(b, 'remote-commit');
    a.put('who', 'a');
    await a.commit();
    assert.deepEqual(await heard, { version: 1 });
    b.put('who', 'b');
    const error = await b.commit().catch((e) => e);
    assert.ok(error instanceof ConflictError, String(error));
    assert.equal(error.actualVersion, 1);
    assert.equal(b.dirty, true);
    await b.close().catch(() => undefined);
    const c = await open(name, { follow: false });
    const d = await open(name, { follow: false });
    c.put('n', '1');
    await c.commit();
    d.transaction((tx) => tx.put('n', String(Number(tx.getText('n') ?? '0') + 10)));
    const rebased = nextEvent(d, 'rebase');
    assert.equal((await d.commit()).version, 3);
    assert.equal((await rebased).replayed, 1);
    assert.equal(d.getText('n'), '11');
    await Promise.all([a.close(), c.close(), d.close()]);
  });

  test(`${label}: a store follows another's commits`, async () => {
    const name = uniqueName('contract');
    const a = await open(name);
    const b = await open(name);
    const seen = new Promise((resolve) => b.watch({ key: 'x' }, (e) => resolve(e)));
    a.put('x', 'from a');
    await a.commit();
    const event = await seen;
    assert.equal(event.source, 'remote');
    assert.equal(b.getText('x'), 'from a');
    assert.equal(b.version, 1);
    await Promise.all([a.close(), b.close()]);
  });

  if (kind.stored === undefined) return;
  test(`${label}: stored bytes stay bounded over 100 commits of a changing state`, async () => {
    const name = uniqueName('contract');
    const a = await open(name);
    for (let i = 0; i < 100; ++i) {
      a.put(`k${i % 10}`, new Uint8Array(2000).fill(i));
      await a.commit();
    }
    const bytes = await kind.stored(name);
    assert.ok(bytes < 400_000, `${bytes} bytes stored for ~20 KB of data`);
    await a.close();
  });
}
