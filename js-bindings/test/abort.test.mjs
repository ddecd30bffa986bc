// A wasm module that aborts (issue 23, finding 6: an allocation that fails
// inside C++ aborts it, -fno-exceptions) is never used again, half updated:
// every store on it is closed with a typed error, calls in flight reject, and
// openStore instantiates a new module that restores what was committed.
// The abort is made here by a trap (an out-of-bounds read), as C++'s abort
// would be: both are a WebAssembly.RuntimeError out of a call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, ClosedError, KeepstateError } from '../dist/node.js';
import { loadWasm } from '../dist/wasm.js';
import { freshIndexedDB, nextEvent, uniqueName } from './helpers.mjs';

test('after the module aborts, every store on it is closed with the reason, and reopening restores what was committed', async () => {
  const idb = freshIndexedDB();
  const [a, b] = [uniqueName('abort'), uniqueName('abort')];
  const first = await openStore(a, { indexedDB: idb, autosave: false });
  const second = await openStore(b, { storage: 'memory', autosave: false });
  first.put('k', 'committed');
  await first.commit();
  first.put('k', 'not committed');
  second.put('x', 'y');
  await second.commit();
  const wasm = await loadWasm();
  const errorEvent = nextEvent(first, 'error');
  // The trap: a read far outside linear memory, inside the module.
  const id = wasm.module._keepstate_import_begin(-1);
  assert.throws(() => wasm.module._keepstate_import_add(id, 0x7ffffff0, 64), (e) => e instanceof KeepstateError && /the wasm module aborted/.test(e.message));
  assert.ok(wasm.retired instanceof KeepstateError);
  assert.match((await errorEvent).message, /aborted/);
  // Every store on it: a typed error, at once, and never a call into the module.
  assert.throws(() => first.get('k'), (e) => e instanceof ClosedError && /aborted/.test(e.message));
  assert.throws(() => second.put('x', 'z'), ClosedError);
  await first.close(); // closing an aborted store resolves (nothing can be committed)
  // A new module: the committed state comes back.
  const again = await openStore(a, { indexedDB: idb, autosave: false });
  assert.notEqual(await loadWasm(), wasm, 'a new module instance');
  assert.equal(again.getText('k'), 'committed');
  again.put('k', 'works');
  assert.equal((await again.commit()).version, 2);
  await again.close();
});
