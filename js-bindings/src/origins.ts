// Where an open store came from, for code that opens more of it elsewhere
// (a pool's read replicas, pool.ts): its storage, module and IndexedDB
// factory as openStore resolved them. openStore records every store here.
import type { KeepstateModuleFactory } from './keepstate.js';
import type { StorageBackend } from './storage/backend.js';
import type { ModuleSource } from './wasm.js';

export interface StoreOrigin {
  storage: 'indexeddb' | 'memory' | StorageBackend;
  module: ModuleSource | KeepstateModuleFactory | undefined;
  indexedDB: IDBFactory | undefined;
}

const origins = new WeakMap<object, StoreOrigin>();

/** @internal Called by openStore. */
export function recordOrigin(store: object, origin: StoreOrigin): void {
  origins.set(store, origin);
}

/** How `store` was opened, if openStore opened it. */
export function storeOrigin(store: object): StoreOrigin | undefined {
  return origins.get(store);
}
