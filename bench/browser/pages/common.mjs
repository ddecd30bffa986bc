// Shared by the contenders, so every one of them works on the same data:
// record keys and ids, the bytes of a 1 KiB record, the seeded choice of
// changed records, and the accounts and transfers of the transactions
// workload.

/** The p-th percentile (0..100) of `xs`, nearest rank; undefined for none. */
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Bytes of one state record (the commit and restore workloads). */
export const RECORD_BYTES = 1024;

/** xorshift32: a deterministic stream, so every contender gets the same ids. */
export function rng(seed) {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/** 8 MiB of random bytes (crypto.getRandomValues), so no storage layer can compress them. */
let pool;
export function randomPool() {
  if (!pool) {
    pool = new Uint8Array(8 << 20);
    for (let i = 0; i < pool.length; i += 65536) crypto.getRandomValues(pool.subarray(i, i + 65536));
  }
  return pool;
}

/** Record `id`'s bytes at write generation `gen`: a view of the pool (copy it if you keep it). */
export function recordBytes(id, gen) {
  const p = randomPool();
  const slots = p.length / RECORD_BYTES;
  const slot = (Math.imul(id, 2654435761) + Math.imul(gen, 40503)) >>> 0;
  const at = (slot % slots) * RECORD_BYTES;
  return p.subarray(at, at + RECORD_BYTES);
}

/** `count` distinct record ids out of `records`, chosen by `seed` (all of them, in order, if count >= records). */
export function changedIds(records, count, seed) {
  if (count >= records) return Array.from({ length: records }, (_, i) => i);
  const next = rng(seed);
  const chosen = new Set();
  while (chosen.size < count) chosen.add(next() % records);
  return [...chosen];
}

/** The store key of record `id` (keepstate). */
export const recordKey = (id) => `r/${String(id).padStart(8, '0')}`;

/**
 * The transfers of one run: `n` (from, to, amount) triples over `accounts`
 * accounts, seeded; every contender applies the same ones. Amounts are small
 * against the initial balance (1000), so nearly all apply.
 */
export function transfers(n, accounts, seed) {
  const next = rng(seed);
  const from = new Uint32Array(n), to = new Uint32Array(n), amount = new Uint32Array(n);
  for (let i = 0; i < n; ++i) {
    from[i] = next() % accounts;
    to[i] = next() % accounts;
    amount[i] = 1 + (next() % 100);
  }
  return { from, to, amount };
}

export const INITIAL_BALANCE = 1000;

/**
 * The keys and values of the user's-seat put/get figures (run.mjs, "API"):
 * `n` ASCII keys of 10 characters and, per key, a view of `valueBytes`
 * random bytes of the pool (views: a contender that keeps a value copies it,
 * as an app's reused buffer would force it to). Built before the clock starts.
 */
function apiData(n, valueBytes, seed) {
  const p = randomPool();
  const slots = Math.floor(p.length / valueBytes);
  const next = rng(seed);
  const keys = new Array(n), values = new Array(n);
  for (let i = 0; i < n; ++i) {
    keys[i] = `k/${String(i).padStart(8, '0')}`;
    const at = (next() % slots) * valueBytes;
    values[i] = p.subarray(at, at + valueBytes);
  }
  return { keys, values };
}

/**
 * Times `n` put(key, value) of apiData's keys and values, then `n` get(key) of
 * them (each must return the value: its length is checked).
 */
export function timePutGet({ n, valueBytes, seed }, put, get) {
  const { keys, values } = apiData(n, valueBytes, seed);
  const t0 = now();
  for (let i = 0; i < n; ++i) put(keys[i], values[i]);
  const putMs = now() - t0;
  let bytes = 0;
  const t1 = now();
  for (let i = 0; i < n; ++i) bytes += get(keys[i]).length;
  const getMs = now() - t1;
  if (bytes !== n * valueBytes) throw new Error(`timePutGet: read ${bytes} bytes, not ${n * valueBytes}`);
  return { putMs, getMs, putPerSecond: n / (putMs / 1000), getPerSecond: n / (getMs / 1000) };
}

/** The ledger's transfer on two account objects; false (nothing changed) if it cannot apply. */
export function applyTransfer(f, g, amount) {
  if (f === g || f.balance < amount) return false;
  f.balance -= amount;
  g.balance += amount;
  ++f.transfers;
  ++g.transfers;
  return true;
}

/** Resolves when an IDBRequest or IDBTransaction finishes. */
export function done(target) {
  return new Promise((resolve, reject) => {
    if (target instanceof IDBTransaction) {
      target.oncomplete = () => resolve();
      target.onabort = target.onerror = () => reject(target.error ?? new Error('transaction aborted'));
    } else {
      target.onsuccess = () => resolve(target.result);
      target.onerror = () => reject(target.error);
    }
  });
}

/** Opens (creating) an IndexedDB database with the given object stores. */
export function openDb(name, stores) {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    for (const s of stores) if (!req.result.objectStoreNames.contains(s)) req.result.createObjectStore(s);
  };
  return done(req);
}

export const now = () => performance.now();

// --- seat.mjs: a user's state of 1 KiB records, random or compressible ------

/**
 * 8 MiB of text-like bytes: words drawn (seeded) from a small vocabulary, the
 * kind of bytes a JSON-ish app state holds. Chromium compresses large
 * IndexedDB values, so these store and read faster than random bytes.
 */
let textPool;
export function compressiblePool() {
  if (!textPool) {
    const words = ['{"id":', '"name":', '"balance":', '"active":true,', '"tags":["a","b"],', 'account ', 'ledger ',
      'transfer ', 'pending ', 'settled ', '0,', '1,', '42,', '1000,', '"memo":"', 'rent ', 'groceries ', 'salary ', '"},'];
    const enc = new TextEncoder();
    const bytes = words.map((w) => enc.encode(w));
    textPool = new Uint8Array(8 << 20);
    const next = rng(12345);
    let at = 0;
    while (at < textPool.length) {
      const w = bytes[next() % bytes.length];
      const n = Math.min(w.length, textPool.length - at);
      textPool.set(w.subarray(0, n), at);
      at += n;
    }
  }
  return textPool;
}

/** The two kinds of state seat.mjs measures: 'random' (incompressible) and 'compressible'. */
export const SEAT_KINDS = ['random', 'compressible'];

/** Record `id`'s bytes at generation `gen`, of `kind`: a view (copy it if you keep it). */
let seededRandom;
function seededRandomPool() {
  // Seeded (not crypto): the state must read back the same after a page reload.
  if (!seededRandom) {
    seededRandom = new Uint8Array(8 << 20);
    const words = new Uint32Array(seededRandom.buffer);
    const next = rng(2024);
    for (let i = 0; i < words.length; ++i) words[i] = next();
  }
  return seededRandom;
}

export function seatRecord(id, gen, kind) {
  const p = kind === 'random' ? seededRandomPool() : compressiblePool();
  const slots = p.length / RECORD_BYTES;
  const slot = (Math.imul(id, 2654435761) + Math.imul(gen, 40503)) >>> 0;
  const at = (slot % slots) * RECORD_BYTES;
  return p.subarray(at, at + RECORD_BYTES);
}

/** The state's bytes as one value: records `ids` (generation `gen` for those in `changed`, else 0), back to back. */
export function seatBytes(ids, kind, gen = 0) {
  const out = new Uint8Array(ids.length * RECORD_BYTES);
  ids.forEach((id, i) => out.set(seatRecord(id, gen, kind), i * RECORD_BYTES));
  return out;
}

// --- peers.mjs: a store of 1 KiB records against the contenders users would pick instead ---

/**
 * Record `id`'s bytes at generation `gen` in peers.mjs: seeded random bytes
 * (incompressible, and the same after a relaunch), a view (copy it if you
 * keep it).
 */
export const peerRecord = (id, gen) => seatRecord(id, gen, 'random');

/** The ids the `commits` single-record rewrites change, in order (seeded, so every contender rewrites the same ones). */
export function rewriteIds(records, commits, seed) {
  const next = rng(seed);
  return Array.from({ length: commits }, () => next() % records);
}

/** The first key after every key that starts with `prefix` (its last character incremented): a prefix scan is [prefix, prefixEnd). */
export const prefixEnd = (prefix) => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

/** A 1 KiB record as text, for a store whose values are JSON (Replicache): base64, 1,368 characters. */
export function recordText(bytes) {
  if (typeof bytes.toBase64 === 'function') return bytes.toBase64();
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return btoa(s);
}

/** Times `rewrite(id, gen)` for each of `ids` (generation gen + i), awaited one after the other: { ms: [...] }. */
export async function timeRewrites({ ids, gen }, rewrite) {
  const ms = [];
  for (let i = 0; i < ids.length; ++i) {
    const t0 = now();
    await rewrite(ids[i], gen + i);
    ms.push(now() - t0);
  }
  return { ms };
}

/** Times `runs` calls of `scan(prefix)`, which resolves with the entries found (each must be `expect`): { ms: [...] }. */
export async function timeScans({ prefix, expect, runs }, scan) {
  const ms = [];
  for (let r = 0; r < runs; ++r) {
    const t0 = now();
    const found = await scan(prefix);
    ms.push(now() - t0);
    if (found.length !== expect) throw new Error(`scan of ${prefix}: ${found.length} entries, not ${expect}`);
  }
  return { ms };
}

/** Throws unless the first read after opening found `key`'s record (`recordLength` long) and the full read `all` records. */
export function checkOpened(key, first, all, records, recordLength = RECORD_BYTES) {
  if (first?.length !== recordLength) throw new Error(`after open: ${key} is ${first === undefined ? 'missing' : `${first.length} bytes`}`);
  if (all.length !== records) throw new Error(`after open: ${all.length} records, not ${records}`);
}
