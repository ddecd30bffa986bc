// The operations a spec drives, by name, in whatever realm hosts them: the
// page itself (harness.js) or a dedicated Worker (worker.js). Stores live
// here between calls; every result and error is plain data (structured
// clone), errors keep their class name, `code` and the keepstate classes they
// are instances of, so a spec can assert on them from Node.
import * as ledger from './ledger.js';
import * as cpp from './cpp-ledger.js';

let ks; // the keepstate module under test
const stores = new Map(); // name -> { store, events }
const decoder = new TextDecoder();
const EVENTS = ['commit', 'conflict', 'corruption', 'data-loss', 'remote-commit', 'rebase', 'stashed-commit', 'error', 'sync'];
const ERROR_CLASSES = ['KeepstateError', 'ConflictError', 'CorruptionError', 'QuotaError', 'ClosedError', 'InvalidArgumentError', 'DataLossError'];

export function serializeError(e) {
  if (typeof e !== 'object' || e === null) return { name: 'thrown', message: String(e) };
  const out = { name: e.name, message: e.message, code: e.code };
  if ('expectedVersion' in e) out.expectedVersion = e.expectedVersion;
  if ('actualVersion' in e) out.actualVersion = e.actualVersion;
  if ('failures' in e) out.failures = [...e.failures];
  for (const field of ['browserMessage', 'lastKnownVersion', 'storedVersion']) if (field in e) out[field] = e[field];
  if (ks) out.instanceOf = ERROR_CLASSES.filter((c) => e instanceof ks[c]);
  return out;
}

function serializeEvent(type, payload) {
  if (payload instanceof Error) return { type, error: serializeError(payload) };
  if (type === 'stashed-commit') return { type, ...payload, error: payload.error && serializeError(payload.error) };
  if (type === 'rebase') return { type, ...payload, dropped: payload.dropped.map((d) => ({ ...d, error: serializeError(d.error) })) };
  if (type === 'sync') return { type, status: serializeSyncStatus(payload.status), failed: payload.failed };
  if (type === 'corruption') return { type, ...payload, failures: [...payload.failures], error: serializeError(payload.error) };
  return { type, ...payload };
}

function serializeSyncStatus(s) {
  return s && { ...s, error: s.error && serializeError(s.error) };
}

function entry(name) {
  const e = stores.get(name);
  if (e === undefined) throw new Error(`no open store "${name}" in this realm`);
  return e;
}

function status(store) {
  return { version: store.version, dirty: store.dirty };
}

/** Where the package's entry module was loaded from (init). */
let packageUrl;

/** fillLarge's key of record `i`. */
const largeKey = (i) => `large/${String(i).padStart(8, '0')}`;
/** fillLarge's value of record `i`: 1 KiB from an LCG seeded by i (incompressible). */
function largeValue(i) {
  const value = new Uint8Array(1024);
  const words = new Uint32Array(value.buffer);
  let x = (i * 2654435761 + 1) >>> 0;
  for (let k = 0; k < words.length; ++k) words[k] = x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  return value;
}

export const ops = {
  /** Loads the package from `url`; returns its export names. */
  async init(url) {
    packageUrl = new URL(url, location.href);
    ks = await import(url);
    return Object.keys(ks).sort();
  },
  realm() {
    return typeof window === 'undefined' ? 'worker' : 'page';
  },
  /** Loads the C++ ledger's client (examples/ledger, as built); open(..., {module: 'ledger'}) then uses it. */
  initLedger: (url) => cpp.load(url),
  async open(name, options = {}) {
    const events = [];
    if (options.module === 'ledger') options = { ...options, module: cpp.moduleSource() };
    const store = await ks.openStore(name, options);
    for (const type of EVENTS) store.on(type, (payload) => events.push(serializeEvent(type, payload)));
    stores.set(name, { store, events });
    return status(store);
  },
  status: (name) => status(entry(name).store),
  /** What guards the store beyond IndexedDB here: 'copy', 'marker' or 'none' (Store.lossProtection). */
  lossProtection: (name) => entry(name).store.lossProtection,
  /** What this realm offers that keepstate uses or that differs between browsers. */
  features: () => ({
    opfs: typeof navigator.storage?.getDirectory === 'function',
    storageEstimate: typeof navigator.storage?.estimate === 'function',
    locks: typeof navigator.locks?.request === 'function',
    broadcastChannel: typeof BroadcastChannel === 'function',
    userAgent: navigator.userAgent,
  }),
  put(name, key, value) {
    entry(name).store.put(key, value);
    return status(entry(name).store);
  },
  /** Puts every [key, value] of an object (strings), outside any transaction. */
  putAll(name, object) {
    const { store } = entry(name);
    for (const [k, v] of Object.entries(object)) store.put(k, v);
    return status(store);
  },
  /** Puts `bytes` pseudo-random (incompressible) bytes under `key`. */
  putRandom(name, key, bytes) {
    const value = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(value.subarray(i, Math.min(bytes, i + 65536)));
    entry(name).store.put(key, value);
    return status(entry(name).store);
  },
  putJSON: (name, key, value) => void entry(name).store.putJSON(key, value),
  /**
   * Puts records `from` to `to` - 1 of 1 KiB each (largeKey, largeValue: incompressible, each
   * recomputable from its index), committing every `every`; returns the bytes committed.
   */
  async fillLarge(name, from, to, every) {
    const { store } = entry(name);
    let written = 0;
    for (let i = from; i < to; ++i) {
      store.put(largeKey(i), largeValue(i));
      if ((i + 1 - from) % every === 0 || i + 1 === to) written += (await store.commit()).bytesWritten;
    }
    return written;
  },
  /** The indices among `indices` whose record is not exactly what fillLarge put. */
  badLarge(name, indices) {
    const { store } = entry(name);
    return indices.filter((i) => {
      const got = store.get(largeKey(i));
      const want = largeValue(i);
      return got === undefined || got.length !== want.length || got.some((b, k) => b !== want[k]);
    });
  },
  /** The size of store.export()'s file (the Blob is dropped). */
  exportSize: async (name) => (await entry(name).store.export()).size,
  get: (name, key) => entry(name).store.getText(key),
  getJSON: (name, key) => entry(name).store.getJSON(key),
  size: (name, key) => entry(name).store.get(key)?.length,
  has: (name, key) => entry(name).store.has(key),
  delete: (name, key) => entry(name).store.delete(key),
  scan: (name, options) => entry(name).store.scan(options).map(([k, v]) => [k, decoder.decode(v)]),
  /** The whole state as {key: text}. */
  dump: (name) => Object.fromEntries(entry(name).store.scan().map(([k, v]) => [k, decoder.decode(v)])),
  /** Applies `writes` ({key: text | null for delete}) in one transaction, throwing at the end if `abort`. */
  transaction(name, writes, abort = false) {
    return entry(name).store.transaction((tx) => {
      const seen = {};
      for (const [k, v] of Object.entries(writes)) {
        if (v === null) tx.delete(k);
        else tx.put(k, v);
        seen[k] = tx.getText(k) ?? null; // read-your-writes
      }
      if (abort) throw new Error('abort requested');
      return seen;
    });
  },
  commit: (name) => entry(name).store.commit(),
  /** store.storage(). */
  storageHealth: (name) => entry(name).store.storage(),
  /** importStore(name, fetch(url)) (a snapshot file), kept open as `name`; returns its status. */
  async importFrom(name, url, options = {}) {
    const events = [];
    const store = await ks.importStore(name, await fetch(url), options);
    for (const type of EVENTS) store.on(type, (payload) => events.push(serializeEvent(type, payload)));
    stores.set(name, { store, events });
    return status(store);
  },
  /** Exports `name` and imports the file as `into` (kept open); returns the file's size. */
  async exportInto(name, into, options = {}) {
    const file = await entry(name).store.export();
    const store = await ks.importStore(into, file, options);
    stores.set(into, { store, events: [] });
    return file.size;
  },
  /** Commits until the store is clean (autosave may commit meanwhile); returns its status. */
  async settle(name) {
    const { store } = entry(name);
    while (store.dirty) await store.commit();
    return status(store);
  },
  /** `n` transactions, each adding 1 to `counter` and writing own/<tab>/<i>; a task boundary every `every`. */
  async increments(name, tab, n, every = 5) {
    const { store } = entry(name);
    for (let i = 0; i < n; ++i) {
      store.transaction((tx) => {
        tx.putJSON('counter', (tx.getJSON('counter') ?? 0) + 1);
        tx.put(`own/${tab}/${i}`, String(i));
      });
      if (i % every === every - 1) await new Promise((r) => setTimeout(r, 1));
    }
    return status(store);
  },
  /** A transaction that writes `key` unless `flag` exists (then it throws). */
  guardedWrite(name, flag, key) {
    entry(name).store.transaction((tx) => {
      if (tx.has(flag)) throw new Error(`${flag} is set`);
      tx.put(key, 'written');
    });
    return status(entry(name).store);
  },
  /** Starts recording the store's watch events for `range` (see `watched`). */
  watch(name, range) {
    const e = entry(name);
    e.watched = [];
    e.store.watch(range, (ev) =>
      e.watched.push({ source: ev.source, version: ev.version, at: performance.now(), changes: ev.changes.map((c) => [c.key, c.value === undefined ? null : decoder.decode(c.value)]) }));
  },
  watched: (name) => entry(name).watched,
  async reload(name) {
    await entry(name).store.reload();
    return status(entry(name).store);
  },
  async close(name) {
    const { store } = entry(name);
    await store.close();
    stores.delete(name);
    return store.version;
  },
  /** Closes the store, then tries get, put and commit on it; returns what each threw (null: nothing). */
  async closeAndUse(name) {
    const { store } = entry(name);
    await store.close();
    stores.delete(name);
    const attempts = [() => store.get('k'), () => store.put('k', 'v'), () => store.commit()];
    const thrown = [];
    for (const attempt of attempts) {
      try {
        await attempt();
        thrown.push(null);
      } catch (e) {
        thrown.push(serializeError(e));
      }
    }
    return thrown;
  },
  events: (name) => entry(name).events,
  /**
   * A pool of read replicas opened from this realm (from a Worker: Workers of a Worker), with
   * the JS queries of the pool's tests: each key read there, its stats, then the pool closed.
   */
  async poolRead(name, keys, options = {}) {
    const queries = new URL('/js-bindings/test/support/pool-queries.mjs', location.href);
    const pool = await ks.openPool(entry(name).store, { queries, ...options });
    try {
      const answers = [];
      for (const key of keys) {
        const { version, result } = await pool.call('read', key);
        answers.push({ version, text: result.text ?? null });
      }
      const { replicas, answered, failed } = pool.stats();
      return { answers, replicas, answered, failed };
    } finally {
      pool.close();
    }
  },
  /** A synced store's store.sync (its error as data). */
  syncStatus: (name) => serializeSyncStatus(entry(name).store.sync),
  /** store.syncNow(), then store.sync. */
  async syncNow(name) {
    await entry(name).store.syncNow();
    return serializeSyncStatus(entry(name).store.sync);
  },
  /** Every key and value (hex), to compare two devices' states. */
  entries: (name) => entry(name).store.scan().map(([k, v]) => [k, Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('')]),
  /** Resolves with the first event of `type` (already received or next), or rejects after `ms`. */
  async waitForEvent(name, type, ms = 5000) {
    const { events } = entry(name);
    const deadline = Date.now() + ms;
    for (;;) {
      const found = events.find((e) => e.type === type);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no '${type}' event within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  },
  /** Calls a method that must throw; returns the error (as data). */
  expectThrow(name, method, ...args) {
    try {
      const store = entry(name).store;
      store[method](...args);
    } catch (e) {
      return serializeError(e);
    }
    throw new Error(`${method} did not throw`);
  },

  // --- IndexedDB, bypassing the package (the tests' own access) --------------
  async idbKeys(name, objectStore) {
    const db = await idbOpen(`keepstate:${name}`);
    try {
      return await idbRequest(db.transaction(objectStore).objectStore(objectStore).getAllKeys());
    } finally {
      db.close();
    }
  },
  /** Flips every byte at `offsets` (mod length) of record `key`, which stays a Blob if it is one
   * (packs of 64 KiB or more are stored as Blobs); returns the record's length. */
  async idbFlipBytes(name, objectStore, key, offsets) {
    const db = await idbOpen(`keepstate:${name}`);
    try {
      const value = await idbRequest(db.transaction(objectStore).objectStore(objectStore).get(key));
      const isBlob = value instanceof Blob;
      const bytes = isBlob
        ? new Uint8Array(await value.arrayBuffer())
        : new Uint8Array(value.buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value);
      for (const o of offsets) bytes[o % bytes.length] ^= 0xff;
      const tx = db.transaction(objectStore, 'readwrite', { durability: 'strict' });
      tx.objectStore(objectStore).put(isBlob ? new Blob([bytes]) : bytes, key);
      await new Promise((ok, fail) => {
        tx.oncomplete = ok;
        tx.onabort = () => fail(tx.error);
      });
      return bytes.length;
    } finally {
      db.close();
    }
  },
  /** Fills a separate database with `bytes` of incompressible data (to use up a quota). */
  async ballast(bytes) {
    const db = await new Promise((ok, fail) => {
      const req = indexedDB.open('ballast', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('b');
      req.onsuccess = () => ok(req.result);
      req.onerror = () => fail(req.error);
    });
    const value = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(value.subarray(i, Math.min(bytes, i + 65536)));
    const tx = db.transaction('b', 'readwrite', { durability: 'strict' });
    tx.objectStore('b').put(value, 'x');
    await new Promise((ok, fail) => {
      tx.oncomplete = ok;
      tx.onabort = () => fail(tx.error);
    });
    db.close();
  },
  deleteDatabase: (dbName) =>
    new Promise((ok, fail) => {
      const req = indexedDB.deleteDatabase(dbName);
      req.onsuccess = () => ok(true);
      req.onerror = () => fail(req.error);
      req.onblocked = () => fail(new Error(`deleting ${dbName} is blocked`));
    }),
  storageEstimate: () => navigator.storage.estimate(),
  /** The file names of store `name`'s OPFS copy (folder keepstate/<name>/), [] if there is none. */
  async opfsFiles(name) {
    try {
      const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('keepstate')).getDirectoryHandle(encodeURIComponent(name));
      const out = [];
      for await (const n of dir.keys()) out.push(n);
      return out.sort();
    } catch (e) {
      if (e.name === 'NotFoundError') return [];
      throw e;
    }
  },

  /**
   * The records store `name`'s OPFS copy holds, named as its files are (`h-<version>` for
   * the head): the record files and the journal's confirmed records together, less what the
   * journal deleted (docs/crash-safety.md, "the copy's journal").
   */
  async opfsRecords(name) {
    const files = await ops.opfsFiles(name);
    let journal;
    if (files.includes('journal')) {
      const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('keepstate')).getDirectoryHandle(encodeURIComponent(name));
      journal = new Uint8Array(await (await (await dir.getFileHandle('journal')).getFile()).arrayBuffer());
    }
    // The package's own reading of a journal, from the files next to the entry it was loaded from.
    const { copyRecordNames } = await import(new URL('storage/journal.js', packageUrl).href);
    return copyRecordNames(files, journal);
  },

  // --- The JS ledger --------------------------------------------------------
  createLedger(name, accounts, initial, seed) {
    ledger.createLedger(entry(name).store, accounts, initial, seed);
    return status(entry(name).store);
  },
  transfers: (name, count) => ledger.runTransfers(entry(name).store, count),
  audit: (name) => ledger.audit(entry(name).store),
  replay: (name) => ledger.replayMatches(entry(name).store),

  // --- The C++ ledger (examples/ledger) ---------------------------------------
  cppCreate: (name, accounts, initial, seed) => cpp.create(entry(name).store, accounts, initial, seed),
  cppTransfers: (name, count) => cpp.transfers(entry(name).store, count),
  cppAudit: (name) => cpp.audit(entry(name).store),
  cppSpend: (name, from, to, amount) => cpp.transfer(entry(name).store, from, to, amount),
  cppReplay: (name) => cpp.replay(entry(name).store),

  /**
   * The crash test's workload, until the page dies: transfers keep running on
   * their own task loop while commits follow one another; before each commit
   * the state records `meta:intent` = the version this commit will create, so
   * a restored state can be checked against the version it claims to be.
   * `report` hears {type: 'start' | 'acked', version, seq} (and, when acked, `seqAfter`).
   */
  async crashLoop(name, batch, report, useCpp = false) {
    const { store } = entry(name);
    let pumped = 0;
    if (useCpp) {
      // One transfer_batch call at a time (each numbers its operations from the stored count).
      (async () => {
        for (;;) {
          await cpp.transfers(store, batch);
          pumped += batch;
        }
      })();
    } else {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        ledger.runTransfers(store, batch);
        pumped += batch;
        channel.port2.postMessage(0);
      };
      channel.port2.postMessage(0);
    }
    for (;;) {
      const version = store.version + 1;
      store.putJSON('meta:intent', version);
      const seq = useCpp ? cpp.operations(store) : store.getJSON('meta:seq');
      report({ type: 'start', version, seq, pumped });
      const result = await store.commit();
      // The commit captured the state after it was requested, once it held the lock and
      // no call was in flight (docs/api.md): between `seq` and the operations done now.
      const seqAfter = useCpp ? cpp.operations(store) : store.getJSON('meta:seq');
      report({ type: 'acked', version: result.version, seq, seqAfter, bytes: result.bytesWritten, ms: result.ms });
    }
  },
};

function idbOpen(dbName) {
  return new Promise((ok, fail) => {
    const req = indexedDB.open(dbName);
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });
}

function idbRequest(req) {
  return new Promise((ok, fail) => {
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });
}

/** Runs op `name`; never rejects: {ok: true, value} or {ok: false, error}. */
export async function run(name, args) {
  try {
    const op = ops[name];
    if (op === undefined) throw new Error(`unknown op ${name}`);
    return { ok: true, value: await op(...args) };
  } catch (e) {
    return { ok: false, error: serializeError(e) };
  }
}
