// Devices for bench/sync: synced ledger stores of the package (js-bindings/dist) under Node,
// each with its own fake IndexedDB (a browser profile of its own), as
// js-bindings/test/sync.test.mjs opens them.
import { existsSync } from 'node:fs';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import WebSocket from 'ws';
import { openStore } from '../../js-bindings/dist/node.js';
import { TOKEN } from './wire.mjs';

// As in a browser, where the IndexedDB backend finds it.
globalThis.IDBKeyRange ??= IDBKeyRange;

const ledgerDir = new URL('../../build/wasm-release/examples/ledger/', import.meta.url);
if (!existsSync(new URL('client.mjs', ledgerDir))) throw new Error('build the wasm-release preset and run npm run build:js first (make bench-sync does)');
export const { ledgerModule, Ledger, accountKey, LEDGER_KEY, encodeTransfer, encodeOpenAccount } = await import(new URL('client.mjs', ledgerDir));

let devices = 0;

/**
 * Opens a device on `space`: { store, ledger }. websocket: listen for pokes (else it syncs on
 * its commits and syncNow() only). fetch: another fetch (e.g. wire.mjs's countingFetch).
 * storage: 'memory' instead of a fresh fake IndexedDB.
 */
export async function openDevice(url, space, { websocket = true, fetch, storage } = {}) {
  const store = await openStore(`bench-device-${process.pid}-${++devices}`, {
    ...(storage === undefined ? { indexedDB: new IDBFactory() } : { storage }),
    module: ledgerModule,
    autosave: false,
    sync: { url, space, token: TOKEN, pullIntervalMs: 1e9, websocket, WebSocket, ...(fetch ? { fetch } : {}) },
  });
  return { store, ledger: new Ledger(store) };
}

/** Throws unless the device's last round succeeded and left nothing pending. */
export function assertSynced(device, what) {
  const s = device.store.sync;
  if (s.error !== null) throw new Error(`${what}: the device's sync failed: ${s.error.message}`);
  if (s.pending !== 0) throw new Error(`${what}: ${s.pending} mutations still pending`);
}
