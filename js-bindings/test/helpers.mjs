// Shared helpers for the js-bindings tests (Node's test runner + fake-indexeddb).
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';

// As in a browser, where the IndexedDB backend finds it (a catch-up reads a key range of manifests).
globalThis.IDBKeyRange ??= IDBKeyRange;

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

/** Flips the last byte of every stored manifest of store `name`: no version verifies any more. */
export function damageEveryManifest(factory, name) {
  return tamper(factory, name, (kind, key, bytes) => {
    if (kind !== 'manifests') return undefined;
    const copy = new Uint8Array(bytes);
    copy[copy.length - 1] ^= 1;
    return copy;
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
  // Packs are stored as Blobs (idb.ts): their bytes, read after the transaction.
  for (const map of Object.values(out)) {
    for (const [k, v] of map) if (v instanceof Blob) map.set(k, new Uint8Array(await v.arrayBuffer()));
  }
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

/**
 * An in-memory stand-in for an OPFS directory (what openStore's `opfs` takes):
 * `files` maps a path ('keepstate/<name>/h-...') to its bytes. A write becomes
 * visible only at close(), as OPFS's swap-file writes do. `state.failWrites`
 * makes every write reject (a full disk); `state.failWrite(path)`, those it
 * returns true for. With `{ syncAccessHandles: true }` its files also have
 * createSyncAccessHandle(), exclusive as OPFS's are (a second one, or removing
 * the file or its folder, fails with NoModificationAllowedError while one is
 * open): the copy then keeps its journal here; `failWrites` and `failWrite`
 * fail its writes too, with QuotaExceededError as OPFS's do.
 */
export function memoryDirectory(state = {}, { syncAccessHandles = process.env.KEEPSTATE_TEST_JOURNAL === '1' } = {}) {
  const files = (state.files ??= new Map());
  const locked = (state.locked ??= new Set()); // paths with an open sync handle
  const noModification = (what) => Object.assign(new Error(`${what} is locked`), { name: 'NoModificationAllowedError' });
  const dirs = (state.dirs ??= new Set()); // folders made empty (a folder with files exists anyway)
  const notFound = (what) => Object.assign(new Error(`${what} not found`), { name: 'NotFoundError' });
  const dir = (path) => ({
    async getDirectoryHandle(name, { create = false } = {}) {
      const key = `${path}${name}/`;
      if (!dirs.has(key) && ![...files.keys()].some((k) => k.startsWith(key))) {
        if (!create) throw notFound(key);
        dirs.add(key);
      }
      return dir(key);
    },
    async getFileHandle(name, { create = false } = {}) {
      const key = path + name;
      if (!files.has(key)) {
        if (!create) throw notFound(key);
        files.set(key, new Uint8Array(0));
      }
      return {
        async getFile() {
          const bytes = files.get(key);
          if (bytes === undefined) throw notFound(key);
          return { size: bytes.length, arrayBuffer: async () => bytes.slice().buffer };
        },
        async createWritable() {
          const parts = [];
          return {
            async write(data) {
              if (state.failWrites || state.failWrite?.(key)) throw Object.assign(new Error('disk full'), { name: 'QuotaExceededError' });
              parts.push(data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : data.slice());
            },
            async close() {
              const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
              let at = 0;
              for (const p of parts) out.set(p, (at += p.length) - p.length);
              files.set(key, out);
            },
            async abort() {},
          };
        },
        ...(syncAccessHandles && {
          async createSyncAccessHandle() {
            if (locked.has(key)) throw noModification(key);
            locked.add(key);
            let open = true;
            const bytes = () => {
              if (!open) throw Object.assign(new Error('the handle is closed'), { name: 'InvalidStateError' });
              return files.get(key) ?? new Uint8Array(0);
            };
            return {
              getSize: () => bytes().length,
              read(into, { at }) {
                const b = bytes().subarray(at, at + into.length);
                into.set(b);
                return b.length;
              },
              write(data, { at }) {
                if (state.failWrites || state.failWrite?.(key)) throw Object.assign(new Error('disk full'), { name: 'QuotaExceededError' });
                const old = bytes();
                const out = new Uint8Array(Math.max(old.length, at + data.length));
                out.set(old);
                out.set(data, at);
                files.set(key, out);
                return data.length;
              },
              truncate(size) {
                const old = bytes();
                const out = new Uint8Array(size);
                out.set(old.subarray(0, size));
                files.set(key, out);
              },
              flush() {},
              close() {
                open = false;
                locked.delete(key);
              },
            };
          },
        }),
      };
    },
    async removeEntry(name, { recursive = false } = {}) {
      const folder = `${path}${name}/`;
      const inside = [...files.keys()].filter((k) => k.startsWith(folder));
      if (inside.some((k) => locked.has(k)) || locked.has(path + name)) throw noModification(path + name);
      if (inside.length > 0 || dirs.has(folder)) {
        if (inside.length > 0 && !recursive) throw Object.assign(new Error(`${path}${name} is not empty`), { name: 'InvalidModificationError' });
        for (const k of inside) files.delete(k);
        for (const d of [...dirs]) if (d.startsWith(folder)) dirs.delete(d);
        return;
      }
      if (!files.delete(path + name)) throw notFound(path + name);
    },
    syncAccessHandles,
    async *keys() {
      const names = new Set();
      for (const key of files.keys()) {
        if (key.startsWith(path) && !key.slice(path.length).includes('/')) names.add(key.slice(path.length));
      }
      yield* names;
    },
  });
  return dir('');
}

/**
 * The records store `name`'s copy holds in a memoryDirectory's state, as file names (what
 * copyFiles lists without a journal): its record files and its journal's confirmed records
 * together, less what the journal deleted, and the newest head as `h-<version>`.
 */
export async function copyRecordNames(state, name) {
  const { copyRecordNames: namesIn } = await import('../dist/storage/journal.js');
  return namesIn(copyFiles(state, name), state.files.get(`keepstate/${encodeURIComponent(name)}/journal`));
}

/** The file names of store `name`'s copy in a memoryDirectory's state. */
export function copyFiles(state, name) {
  const prefix = `keepstate/${encodeURIComponent(name)}/`;
  return [...state.files.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
}

/**
 * An IDBFactory that reports `dataLoss` on the next upgrade of any database, as
 * Chromium does after it deleted an origin's corrupt IndexedDB.
 */
export function lossReportingIndexedDB(inner, message = 'IndexedDB (database was corrupt): checksum mismatch') {
  return {
    open(name, version) {
      const req = inner.open(name, version);
      req.addEventListener('upgradeneeded', (event) => {
        Object.defineProperty(event, 'dataLoss', { value: 'total' });
        Object.defineProperty(event, 'dataLossMessage', { value: message });
      });
      return req;
    },
    deleteDatabase: (name) => inner.deleteDatabase(name),
  };
}

/** Deletes store `name`'s IndexedDB database behind its back. */
export function deleteDatabase(factory, name) {
  return request(factory.deleteDatabase(`keepstate:${name}`));
}
