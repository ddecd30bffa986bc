// Addresses past 2 GiB: the module's memory goes up to 4 GiB (a state past
// 1.5 GiB, docs/api.md "How large a state can be"), and wasm returns an
// address as an i32, which JS reads signed. Every export whose result is a
// u32 is read unsigned (U32_RESULTS, wasm.ts): here 2 GiB of the module's
// memory is taken first, so that the store's arena, its commit plan and
// staging, the scratch and output buffers all lie above 2 GiB.
//
// Its own file: the module of a realm keeps its memory, and the other tests
// need not run past 2 GiB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, importStore } from '../dist/node.js';
import { loadWasm } from '../dist/wasm.js';
import { uniqueName } from './helpers.mjs';

test('a store whose buffers lie above 2 GiB of wasm memory reads, writes, commits, reloads, exports and imports', async () => {
  const wasm = await loadWasm();
  const m = wasm.module;
  // Untouched, so the process's memory hardly grows: wasm memory is zeroed lazily.
  const taken = [m._malloc(1 << 30), m._malloc(1 << 30)];
  assert.ok(taken.every((p) => p > 0), `the module gave 2 GiB (${taken})`);
  assert.ok(taken[1] >= 2 ** 30, 'the second GiB lies above the first');
  const probe = m._malloc(16);
  assert.ok(probe >= 2 ** 31, `an address past 2 GiB reads unsigned (${probe})`);
  m._free(probe);
  try {
    const options = { storage: 'memory', autosave: false };
    const name = uniqueName('high');
    const s = await openStore(name, options);
    // Values large enough to grow the scratch and output buffers (new, high allocations).
    const big = new Uint8Array(2 << 20).map((_, i) => i % 251);
    s.put('big', big);
    for (let i = 0; i < 1000; ++i) s.put(`k/${String(i).padStart(4, '0')}`, `v${i}`);
    assert.deepEqual(s.get('big'), big);
    assert.equal(s.getText('k/0999'), 'v999');
    assert.equal(s.scan({ prefix: 'k/' }).length, 1000);
    assert.equal((await s.commit()).version, 1);
    s.put('k/0000', 'changed');
    await s.reload();
    assert.equal(s.getText('k/0000'), 'v0', 'reload() restored the commit');
    const file = await s.export();
    const copy = await importStore(uniqueName('high-copy'), file, options);
    assert.deepEqual(copy.get('big'), big);
    assert.equal(copy.scan({ prefix: 'k/' }).length, 1000);
    await copy.close();
    await s.close();
    const again = await openStore(name, options);
    assert.equal(again.getText('k/0500'), 'v500');
    await again.close();
  } finally {
    for (const p of taken) m._free(p);
  }
});
