// Counts the calls from JS into the wasm module (each a crossing of the
// JS/wasm boundary) that one autosaved put makes, from store.put() to the
// commit event: `node scripts/count-crossings.mjs` after `npm run build:js`.
// Node, fake-indexeddb; the module's exports are wrapped with counters.
import { IDBFactory } from 'fake-indexeddb';
import { openStore } from '../js-bindings/dist/node.js'; // the package's Node entry
import { loadWasm } from '../js-bindings/dist/wasm.js';

const wasm = await loadWasm();
const m = wasm.module;
const counts = new Map();
let counting = false;
for (const name of Object.keys(m)) {
  if (!name.startsWith('_keepstate_') && name !== '_malloc' && name !== '_free') continue;
  const fn = m[name];
  if (typeof fn !== 'function') continue;
  // Emscripten's export stubs replace themselves with the raw export on
  // first call: put the counter back after every call.
  const counter = (...args) => {
    if (counting) counts.set(name, (counts.get(name) ?? 0) + 1);
    const result = fn(...args);
    m[name] = counter;
    return result;
  };
  m[name] = counter;
}
const store = await openStore('crossings', { indexedDB: new IDBFactory(), autosave: 5 });
store.put('warm', 'up');
await new Promise((resolve) => store.on('commit', resolve));
counting = true;
const committed = new Promise((resolve) => store.on('commit', resolve));
store.put('key', 'value');
await committed;
counting = false;
await store.close();
const total = [...counts.values()].reduce((a, b) => a + b, 0);
console.log(`one autosaved put, store.put() to the commit event: ${total} calls into wasm`);
for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${name.slice(1)}: ${n}`);
