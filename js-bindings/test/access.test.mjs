// The keyed calls' fast paths (access.ts, engine.ts): keys staged straight
// into wasm memory (ASCII a byte a character, anything else as UTF-8 through
// encodeInto), values after them; what a user relies on of them: every key
// means its UTF-8 bytes, the limits hold to the byte, get returns a copy the
// caller owns, and bad arguments and dead stores throw the typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ClosedError, InvalidArgumentError } from '../dist/node.js';
import { uniqueName } from './helpers.mjs';

const open = () => openStore(uniqueName('access'), { storage: 'memory', autosave: false, follow: false });
const utf8 = (s) => new TextEncoder().encode(s);

test('non-ASCII keys are their UTF-8 bytes: round trip, order; a lone surrogate is refused, never aliased', async () => {
  const s = await open();
  const keys = ['plain', 'é', 'aé', 'abcé中', '中文', '😀 emoji', 'ascii then 😀', '\u007f', '\u0080', 'ü'.repeat(300)];
  keys.forEach((k, i) => s.put(k, `v${i}`));
  keys.forEach((k, i) => assert.equal(s.getText(k), `v${i}`, k));
  // Scan order is the order of the keys' UTF-8 bytes, and scan decodes them back.
  const byBytes = [...keys].sort((a, b) => Buffer.compare(Buffer.from(utf8(a)), Buffer.from(utf8(b))));
  assert.deepEqual(s.scan().map(([k]) => k), byBytes);
  // A lone surrogate has no UTF-8 form: TextEncoder would make it U+FFFD, and two keys would
  // alias. It is refused, in keys, values and scan bounds, and nothing is written.
  s.put('x\uFFFD', 'replacement character');
  for (const bad of ['x\uD800', 'x\uDC00', '\uDC00\uD800']) {
    assert.throws(() => s.put(bad, 'lone'), (e) => e instanceof InvalidArgumentError && /lone surrogate/.test(e.message), bad);
    assert.throws(() => s.has(bad), InvalidArgumentError);
    assert.throws(() => s.put('ok', bad), InvalidArgumentError);
    assert.throws(() => s.scan({ prefix: bad }), InvalidArgumentError);
  }
  assert.equal(s.getText('x\uFFFD'), 'replacement character');
  assert.equal(s.has('ok'), false);
  s.transaction((tx) => {
    tx.put('tx-é', 'in a transaction');
    assert.equal(tx.getText('tx-é'), 'in a transaction');
  });
  assert.equal(s.getText('tx-é'), 'in a transaction');
  assert.equal(s.delete('中文'), true);
  assert.equal(s.has('中文'), false);
  await s.close();
});

test('keys at the size limit, counted in UTF-8 bytes', async () => {
  const s = await open();
  const ok = ['k'.repeat(1024), 'é'.repeat(512), '中'.repeat(341) + 'a', '😀'.repeat(256), 'a'.repeat(1020) + '😀'];
  const over = ['k'.repeat(1025), 'é'.repeat(513), '中'.repeat(342), '😀'.repeat(257), 'a'.repeat(1021) + '😀', ''];
  for (const k of ok) {
    assert.equal(utf8(k).length <= 1024, true);
    s.put(k, 'max');
    assert.equal(s.getText(k), 'max', `${utf8(k).length} bytes`);
  }
  for (const k of over) {
    assert.throws(() => s.put(k, 'x'), InvalidArgumentError, `put, ${utf8(k).length} bytes`);
    assert.throws(() => s.get(k), InvalidArgumentError, `get, ${utf8(k).length} bytes`);
    assert.throws(() => s.transaction((tx) => tx.put(k, 'x')), InvalidArgumentError, `tx.put, ${utf8(k).length} bytes`);
  }
  await s.close();
});

test('values: strings as UTF-8, views at an offset, empty, the largest, and small ones after it', async () => {
  const s = await open();
  s.put('text', 'naïve café 中文 😀');
  assert.equal(s.getText('text'), 'naïve café 中文 😀');
  assert.deepEqual(s.get('text'), utf8('naïve café 中文 😀'));
  const backing = new Uint8Array(100).map((_, i) => i);
  s.put('view', backing.subarray(10, 20));
  assert.deepEqual([...s.get('view')], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  s.put('empty-bytes', new Uint8Array(0));
  s.put('empty-text', '');
  assert.equal(s.get('empty-bytes').length, 0);
  assert.equal(s.getText('empty-text'), '');
  // 16 MiB (the limit) grows the scratch buffer and memory; what follows still uses it right.
  const big = new Uint8Array(16 << 20);
  big[0] = 1;
  big[big.length - 1] = 2;
  s.put('big', big);
  assert.throws(() => s.put('too big', new Uint8Array((16 << 20) + 1)), InvalidArgumentError);
  const back = s.get('big');
  assert.deepEqual([back.length, back[0], back[back.length - 1]], [16 << 20, 1, 2]);
  s.put('small', 'after the big one');
  assert.equal(s.getText('small'), 'after the big one');
  assert.deepEqual([...s.get('view')], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  // A string value larger than any before it (the scratch room is 3 bytes per UTF-16 unit).
  const long = '中'.repeat(1 << 20);
  s.put('long text', long);
  assert.equal(s.getText('long text'), long);
  await s.close();
});

test('get returns a copy the caller owns, not a view of wasm memory', async () => {
  const s = await open();
  const mine = new Uint8Array([1, 2, 3]);
  s.put('k', mine);
  mine[0] = 9; // the caller reuses its array: the stored value is a copy
  const a = s.get('k');
  assert.deepEqual([...a], [1, 2, 3]);
  assert.equal(a.buffer.byteLength, 3, 'its own buffer, holding exactly the value');
  a[1] = 7;
  for (let i = 0; i < 1000; ++i) s.put(`filler-${i}`, new Uint8Array(64));
  assert.deepEqual([...s.get('k')], [1, 2, 3]);
  assert.deepEqual([...a], [1, 7, 3], 'later calls leave a returned copy alone');
  await s.close();
});

test('bad keys and values are InvalidArgumentError; a closed store and an ended transaction ClosedError', async () => {
  const s = await open();
  for (const key of [42, undefined, null, {}, Symbol.iterator, new Uint8Array(1)]) {
    assert.throws(() => s.put(key, 'x'), InvalidArgumentError, String(typeof key));
    assert.throws(() => s.get(key), InvalidArgumentError);
    assert.throws(() => s.getText(key), InvalidArgumentError);
    assert.throws(() => s.has(key), InvalidArgumentError);
    assert.throws(() => s.delete(key), InvalidArgumentError);
  }
  for (const value of [42, undefined, null, [1, 2], new Uint16Array(2), new ArrayBuffer(4), {}]) {
    assert.throws(() => s.put('k', value), InvalidArgumentError, Object.prototype.toString.call(value));
    assert.throws(() => s.transaction((tx) => tx.put('k', value)), InvalidArgumentError);
  }
  assert.equal(s.has('k'), false, 'nothing was written by a refused put');
  assert.equal(s.dirty, false);
  let leaked;
  s.transaction((tx) => {
    assert.throws(() => tx.get(7), InvalidArgumentError);
    leaked = tx;
  });
  for (const call of [() => leaked.get('k'), () => leaked.put('k', 'v'), () => leaked.delete('k'), () => leaked.has('k'), () => leaked.put(42, 'v')]) {
    assert.throws(call, ClosedError);
  }
  // A later transaction does not bring an earlier one's tx back to life.
  s.transaction(() => assert.throws(() => leaked.put('k', 'v'), ClosedError));
  await s.close();
  for (const call of [() => s.put('k', 'v'), () => s.put(42, 'v'), () => s.get('k'), () => s.delete(42), () => s.has('k')]) {
    assert.throws(call, ClosedError);
  }
});
