import { openStore } from '../dist/node.js';
import { freshIndexedDB } from './helpers.mjs';
import { startServer } from './support/sync-server.mjs';
import WebSocket from 'ws';
const { ledgerModule, Ledger, LEDGER_KEY } = await import('/work/main/build/wasm-release/examples/ledger/client.mjs');
const server = await startServer({ binary: '/work/main/build/native-release/examples/ledger/keepstate-ledger-server' });
const dev = async (n) => { const store = await openStore(n, { indexedDB: freshIndexedDB(), module: ledgerModule, autosave: false, sync: { url: server.url, space: 'sp', token: 'secret', WebSocket } }); return { store, ledger: new Ledger(store) }; };
try {
  const a = await dev('a'), b = await dev('b');
  await a.ledger.openAccounts(0, 10, 100); await a.store.commit(); await a.store.syncNow(); await b.store.syncNow();
  let resolve; b.store.watch({ key: LEDGER_KEY }, (e) => resolve?.(performance.now()));
  const lat = [], commitT = [];
  for (let i = 0; i < 50; ++i) {
    const heard = new Promise(r => resolve = r);
    const t0 = performance.now();
    await a.ledger.transfer(1, 2, 1); await a.store.commit();
    commitT.push(performance.now() - t0);
    lat.push((await heard) - t0);
  }
  lat.sort((x,y)=>x-y); commitT.sort((x,y)=>x-y);
  console.log('latency p50', lat[25].toFixed(1), 'p99', lat[49].toFixed(1), 'local transfer+commit p50', commitT[25].toFixed(1));
  await a.store.close(); await b.store.close();
} catch (e) { console.error('ERR', e); }
await server.stop();
