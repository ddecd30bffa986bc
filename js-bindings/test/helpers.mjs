// Shared helpers for the js-bindings tests (Node's test runner + fake-indexeddb).
import { IDBFactory } from 'fake-indexeddb';

let counter = 0;
/** A store name unique within this process (BroadcastChannel names are process-wide). */
export function uniqueName(prefix = 'store') {
  return `${prefix}-${process.pid}-${++counter}`;
}

/** A fresh, empty IndexedDB. */
export function freshIndexedDB() {
  return new IDBFactory();
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Opens the database of store `name` directly (no keepstate in between). */
export async function rawDatabase(factory, name) {
  return request(factory.open(`keepstate:${name}`));
}

/** { head, manifests, packs }: each a Map key -> Uint8Array. */
export async function dumpRecords(factory, name) {
  const db = await rawDatabase(factory, name);
  const out = {};
  const tx = db.transaction(['head', 'manifests', 'packs'], 'readonly');
  for (const kind of ['head', 'manifests', 'packs']) {
    const os = tx.objectStore(kind);
    const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
    out[kind] = new Map(keys.map((k, i) => [k, values[i]]));
  }
  db.close();
  return out;
}

/** Replaces stored records: `edit(kind, key, bytes)` returns new bytes or undefined to keep. */
export async function tamper(factory, name, edit) {
  const records = await dumpRecords(factory, name);
  const db = await rawDatabase(factory, name);
  const tx = db.transaction(['head', 'manifests', 'packs'], 'readwrite');
  for (const [kind, map] of Object.entries(records)) {
    for (const [key, bytes] of map) {
      const replaced = edit(kind, key, bytes);
      if (replaced !== undefined) tx.objectStore(kind).put(replaced, key);
    }
  }
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = () => reject(tx.error);
  });
  db.close();
}

export function storedBytes(records) {
  let n = 0;
  for (const map of Object.values(records)) for (const v of map.values()) n += v.byteLength;
  return n;
}

/**
 * An IDBFactory whose object stores throw QuotaExceededError from put() while
 * `state.full` is true — what a browser does when the origin's quota is spent.
 */
export function quotaIndexedDB(state) {
  const inner = new IDBFactory();
  const forward = (target, wrapGet) =>
    new Proxy(target, {
      get(t, p) {
        const wrapped = wrapGet(t, p);
        if (wrapped !== undefined) return wrapped;
        const v = Reflect.get(t, p, t);
        return typeof v === 'function' ? v.bind(t) : v;
      },
      set(t, p, v) {
        t[p] = v;
        return true;
      },
    });
  const wrapStore = (os) =>
    forward(os, (t, p) =>
      p === 'put'
        ? (...args) => {
            if (state.full) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
            return t.put(...args);
          }
        : undefined,
    );
  const wrapTx = (tx) => forward(tx, (t, p) => (p === 'objectStore' ? (n) => wrapStore(t.objectStore(n)) : undefined));
  const wrapDb = (db) => forward(db, (t, p) => (p === 'transaction' ? (...a) => wrapTx(t.transaction(...a)) : undefined));
  const wrapOpen = (req) => forward(req, (t, p) => (p === 'result' ? (t.readyState === 'done' && t.result ? wrapDb(t.result) : undefined) : undefined));
  return forward(inner, (t, p) => (p === 'open' ? (...a) => wrapOpen(t.open(...a)) : undefined));
}

/** Resolves with the next `event` of `store`, or rejects after `ms`. */
export function nextEvent(store, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    const off = store.on(event, (e) => {
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}
