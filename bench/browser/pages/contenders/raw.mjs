// The limit: IndexedDB itself, used the way TOOLCHAIN.md measured fastest —
// one readwrite transaction (durability 'strict') of few large values
// (2 MiB by default: with 1 MiB the fastest of 1/2/4/8 MiB here, README.md), each a
// copy of just its bytes (never a view of a larger buffer). The bytes are
// the changed 1 KiB records themselves (random, so incompressible), packed
// back to back into those values; the values are built before the clock
// starts, and the same keys are overwritten by every run.
import { checkOpened, done, now, openDb, peerRecord, prefixEnd, recordBytes, recordKey, seatBytes, timeRewrites, timeScans, RECORD_BYTES } from '../common.mjs';

const DEFAULT_RECORD_MIB = 2;
const dbs = new Map();
const dbNamed = async (name) => {
  if (!dbs.has(name)) dbs.set(name, await openDb(name, ['data']));
  return dbs.get(name);
};

/** `bytes` as fresh Uint8Array values of at most `recordMiB` MiB. */
function chunks(bytes, gen, recordMiB = DEFAULT_RECORD_MIB) {
  const chunk = recordMiB * 1048576;
  const out = [];
  for (let at = 0; at < bytes; at += chunk) {
    const n = Math.min(chunk, bytes - at);
    const v = new Uint8Array(n);
    for (let o = 0; o < n; o += RECORD_BYTES) v.set(recordBytes((at + o) / RECORD_BYTES, gen).subarray(0, Math.min(RECORD_BYTES, n - o)), o);
    out.push(v);
  }
  return out;
}

async function put(db, values) {
  const tx = db.transaction('data', 'readwrite', { durability: 'strict' });
  const store = tx.objectStore('data');
  values.forEach((v, i) => store.put(v, i));
  await done(tx);
}

/** Times one put of `bytes` changed bytes (prepared untimed). */
export async function commitRun({ name, bytes, gen, recordMiB }) {
  const db = await dbNamed(name);
  const values = chunks(bytes, gen, recordMiB);
  const t0 = now();
  await put(db, values);
  return { ms: now() - t0, bytesWritten: bytes, records: values.length };
}

/** Writes a state of `bytes` for the restore limit. */
export async function restoreSetup({ name, bytes }) {
  await put(await dbNamed(name), chunks(bytes, 0));
  return { ok: true };
}

/** After a page load: open the database and read every value in one readonly transaction. */
export async function restore({ name, bytes }) {
  const t0 = now();
  const d = await openDb(name, ['data']);
  const tx = d.transaction('data', 'readonly');
  const all = await done(tx.objectStore('data').getAll());
  const ms = now() - t0;
  const total = all.reduce((s, v) => s + v.byteLength, 0);
  if (total !== bytes) throw new Error(`raw restore: read ${total} bytes, expected ${bytes}`);
  d.close();
  return { ms, sinceNavigation: performance.now() };
}

// --- seat.mjs: the state's bytes as one IndexedDB value ----------------------

/** Times one put (readwrite, durability 'strict') of records `ids` (or all `records`) at generation `gen`, as one value (built untimed). */
export async function seatPut({ name, ids, records, kind, gen }) {
  const db = await dbNamed(name);
  const value = seatBytes(ids ?? Array.from({ length: records }, (_, i) => i), kind, gen);
  const t0 = now();
  const tx = db.transaction('data', 'readwrite', { durability: 'strict' });
  tx.objectStore('data').put(value, ids ? 'change' : 'state');
  await done(tx);
  return { ms: now() - t0, bytesWritten: value.length };
}

/**
 * Times opening the database and one get of the state's value, until one byte
 * of every 4 KiB page of it has been read (a large value arrives lazily in
 * Chromium: the get alone resolves before its bytes are there). `getMs`: the
 * get alone.
 */
export async function seatGet({ name, records }) {
  const cached = dbs.get(name);
  if (cached) cached.close();
  dbs.delete(name);
  const t0 = now();
  const d = await openDb(name, ['data']);
  const value = await done(d.transaction('data', 'readonly').objectStore('data').get('state'));
  const getMs = now() - t0;
  let sum = 0;
  for (let i = 0; i < value.length; i += 4096) sum += value[i];
  const ms = now() - t0;
  d.close();
  if (value.length !== records * RECORD_BYTES) throw new Error(`seatGet: ${value.length} bytes, expected ${records * RECORD_BYTES}`);
  return { ms, getMs, sum };
}

// --- peers.mjs: one record per key, each write a readwrite transaction with durability 'strict' ---

let peer;

async function peerPut(entries) {
  const tx = peer.transaction('kv', 'readwrite', { durability: 'strict' });
  const store = tx.objectStore('kv');
  // A copy of just the record's bytes: a view would be cloned with its whole buffer.
  for (const [id, gen] of entries) store.put(peerRecord(id, gen).slice(), recordKey(id));
  await done(tx);
}

/** A new database `name` (opened untimed); times one transaction putting `records` records. */
export async function peersLoad({ name, records }) {
  peer?.close();
  peer = await openDb(name, ['kv']);
  const t0 = now();
  await peerPut(Array.from({ length: records }, (_, id) => [id, 0]));
  return { ms: now() - t0 };
}

/** Times, for each of `ids`, one transaction putting that record (generation gen + i). */
export const peersRewrite = (args) => timeRewrites(args, (id, gen) => peerPut([[id, gen]]));

/** Keys and values of [prefix, prefixEnd) in one readonly transaction. */
async function peerScan(range) {
  const tx = peer.transaction('kv', 'readonly');
  const store = tx.objectStore('kv');
  const [keys, values] = await Promise.all([done(store.getAllKeys(range)), done(store.getAll(range))]);
  return keys.map((k, i) => [k, values[i]]);
}

/** Times `runs` scans of the keys starting with `prefix` (each must find `expect` entries). */
export const peersScan = (args) => timeScans(args, (prefix) => peerScan(IDBKeyRange.bound(prefix, prefixEnd(prefix), false, true)));

/** After a browser relaunch: times opening the database until `key` is read (firstMs), then until every record is (allMs). */
export async function peersOpen({ name, records, key }) {
  const t0 = now();
  peer = await openDb(name, ['kv']);
  const first = await done(peer.transaction('kv', 'readonly').objectStore('kv').get(key));
  const tFirst = now();
  const all = await peerScan(undefined);
  const tAll = now();
  checkOpened(key, first, all, records);
  return { firstMs: tFirst - t0, allMs: tAll - t0 };
}
