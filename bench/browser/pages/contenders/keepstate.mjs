// keepstate through its npm package (js-bindings/dist), as an app uses it:
// openStore, put/get/transaction, commit (durability 'strict', autosave
// off so every commit is the measured one), and the ledger module's C++
// mutators through store.call.
//
// Attribution of commit time: this page records which IndexedDB records each
// commit put (a pass-through wrapper of IDBObjectStore.prototype.put that
// keeps a reference to each value; it copies nothing), and
// replayLastCommit() puts exactly those records again, raw, into a database
// of its own in one readwrite transaction — the same bytes, as many records
// of the same sizes, with the same compressibility. (Chromium compresses
// large IndexedDB values: keepstate's half-empty 4 KiB B-tree pages store and
// write faster than as many random bytes, so a replay of random bytes would
// not be the same work.)
import * as flatbuffers from 'flatbuffers';
import { openStore, preload } from 'keepstate';
import { ledgerModule, accountKey, encodeTransferBatch, decodeTransferResult } from '/ledger/client.mjs';
import { Account } from '/ledger/js/ledger.js';
import { INITIAL_BALANCE, changedIds, checkOpened, done, now, openDb, peerRecord, recordBytes, recordKey, seatRecord, timePutGet, timeRewrites, timeScans, transfers } from '../common.mjs';

let store;
// keepstate-nocopy.mjs imports this module as `keepstate.mjs?nocopy`: the same
// contender with the OPFS copy off, to show what the copy costs.
const STORE_OPTIONS = { autosave: false, copy: !import.meta.url.endsWith('?nocopy') };

// Records put while `capture` is an array: [{ store, key, value }].
let capture = null;
let lastCommit = [];
const idbPut = IDBObjectStore.prototype.put;
IDBObjectStore.prototype.put = function put(value, key) {
  capture?.push({ store: this.name, key, value });
  return idbPut.call(this, value, key);
};

// --- commit latency and restore ------------------------------------------

/** A new store of `records` 1 KiB records, committed once. */
export async function commitSetup({ name, records }) {
  store = await openStore(name, { ...STORE_OPTIONS, durability: 'strict' });
  for (let id = 0; id < records; ++id) store.put(recordKey(id), recordBytes(id, 0));
  const r = await store.commit();
  return { version: r.version, bytesWritten: r.bytesWritten, ms: r.ms };
}

/** Rewrites `count` records (untimed), then times commit(). */
export async function commitRun({ records, count, seed, gen }) {
  for (const id of changedIds(records, count, seed)) store.put(recordKey(id), recordBytes(id, gen));
  capture = [];
  const t0 = now();
  let r;
  try {
    r = await store.commit();
  } finally {
    lastCommit = capture;
    capture = null;
  }
  return { ms: now() - t0, bytesWritten: r.bytesWritten, records: lastCommit.length, version: r.version };
}

/**
 * Times a raw put of the records the last commitRun wrote (the same values,
 * keys and object stores, not keepstate's head check or deletes) in one
 * readwrite transaction, durability 'strict', into the database
 * `replay-<name>` (its records are overwritten by the next replay of the same keys).
 */
export async function replayLastCommit({ name }) {
  const recs = lastCommit;
  if (!recs.length) throw new Error('replayLastCommit: no commit recorded');
  const stores = [...new Set(recs.map((r) => r.store))].sort();
  const db = await openDb(`replay-${name}-${stores.join('+')}`, stores);
  try {
    const t0 = now();
    const tx = db.transaction(stores, 'readwrite', { durability: 'strict' });
    for (const r of recs) tx.objectStore(r.store).put(r.value, r.key);
    await done(tx);
    const ms = now() - t0;
    const bytes = recs.reduce((a, r) => a + (r.value.byteLength ?? 0), 0);
    return { ms, bytesWritten: bytes, records: recs.length };
  } finally {
    db.close();
  }
}

/**
 * After a page load: openStore (module instantiation + restore + verification)
 * until a read works — the figure. Then, to attribute it: store.reload()
 * (restore + verification without instantiation) and a plain read of the
 * store's own IndexedDB records (what IndexedDB alone costs for them).
 */
export async function restore({ name, records }) {
  const t0 = now();
  const s = await openStore(name, STORE_OPTIONS);
  const v = s.get(recordKey(records - 1));
  const ms = now() - t0;
  if (v === undefined || v.length !== 1024) {
    // A 'corruption' event comes on the next task: wait for it to say what happened.
    const events = [];
    s.on('corruption', (e) => events.push(e));
    await new Promise((r) => setTimeout(r, 50));
    const what = events.map((e) => `${e.error.message}`).join('; ') || 'no corruption event';
    throw new Error(`restore: record ${records - 1} missing at version ${s.version}: ${what}`);
  }
  const t1 = now();
  await s.reload();
  const reloadMs = now() - t1;
  const own = await readOwnRecords(`keepstate:${name}`);
  return { ms, reloadMs, ownReadMs: own.ms, storedBytes: own.bytes, storedRecords: own.records, version: s.version };
}

async function readOwnRecords(dbName) {
  const t0 = now();
  const db = await done(indexedDB.open(dbName));
  const names = [...db.objectStoreNames];
  const tx = db.transaction(names, 'readonly');
  const lists = await Promise.all(names.map((n) => done(tx.objectStore(n).getAll())));
  const ms = now() - t0;
  db.close();
  const values = lists.flat();
  return { ms, records: values.length, bytes: values.reduce((a, x) => a + (x.byteLength ?? x.length ?? 0), 0) };
}

// --- seat.mjs: a user's state, with the store's defaults ----------------------
//
// The store opens with its defaults (OPFS copy on, durability 'strict', the
// default page size) except autosave, which is off so that every commit is
// the timed one. debugTimings sums each phase of the timed operation.

let seat;
let phases = {};
let seatCopy = true;
const seatOptions = () => ({
  autosave: false,
  copy: seatCopy,
  debugTimings: (phase, ms) => {
    phases[phase] = (phases[phase] ?? 0) + ms;
  },
});
const takePhases = () => {
  const p = phases;
  phases = {};
  return p;
};

/** A new store holding `records` records of `kind` (generation 0), committed once (that first commit is returned). */
export async function seatSetup({ name, records, kind, copy = true }) {
  seatCopy = copy;
  seat = await openStore(name, seatOptions());
  for (let id = 0; id < records; ++id) seat.put(recordKey(id), seatRecord(id, 0, kind));
  takePhases();
  const r = await seat.commit();
  return { ms: r.ms, bytesWritten: r.bytesWritten, phases: takePhases() };
}

/** Rewrites records `ids` at generation `gen` (untimed), then times commit(). */
export async function seatCommit({ ids, records, kind, gen }) {
  const list = ids ?? Array.from({ length: records }, (_, i) => i);
  for (const id of list) seat.put(recordKey(id), seatRecord(id, gen, kind));
  takePhases();
  const t0 = now();
  const r = await seat.commit();
  const ms = now() - t0;
  return { ms, bytesWritten: r.bytesWritten, version: r.version, phases: takePhases() };
}

/**
 * Closes the open store (untimed) if there is one, then times openStore until
 * the first get is answered (`firstGetMs`) and until every record is
 * readable (`ms`; the same moment today: openStore resolves after the whole
 * restore). Checks one record's bytes: a figure of a wrong state is no figure.
 */
export async function seatReopen({ name, records, kind, gen, copy = true }) {
  seatCopy = copy;
  if (seat) await seat.close();
  seat = undefined;
  takePhases();
  const t0 = now();
  const s = await openStore(name, seatOptions());
  const first = s.get(recordKey(0));
  const firstGetMs = now() - t0;
  const ms = now() - t0;
  const want = seatRecord(0, gen, kind);
  if (first === undefined || first.length !== want.length || first.some((b, i) => b !== want[i])) {
    throw new Error(`seatReopen: record 0 is not generation ${gen} at version ${s.version}`);
  }
  if (s.get(recordKey(records - 1)) === undefined) throw new Error(`seatReopen: record ${records - 1} missing`);
  seat = s;
  return { ms, firstGetMs, version: s.version, phases: takePhases() };
}

// --- peers.mjs: 10,000 records of 1 KiB against the contenders users pick instead ---
//
// The store's defaults (OPFS copy on, durability 'strict'), autosave off:
// put, then commit(), which resolves once IndexedDB has the commit (strict)
// and the OPFS copy holds it.

let peer;

/** A new store `name` (opened untimed); times put of `records` records + one commit(). */
export async function peersLoad({ name, records }) {
  if (peer) await peer.close();
  peer = await openStore(name, { autosave: false });
  const t0 = now();
  for (let id = 0; id < records; ++id) peer.put(recordKey(id), peerRecord(id, 0));
  const r = await peer.commit();
  return { ms: now() - t0, bytesWritten: r.bytesWritten };
}

/** Times, for each of `ids`, put of that record (generation gen + i) and commit(). */
export const peersRewrite = (args) =>
  timeRewrites(args, (id, gen) => {
    peer.put(recordKey(id), peerRecord(id, gen));
    return peer.commit();
  });

/** Times `runs` scans of the keys starting with `prefix` (each must find `expect` entries). */
export const peersScan = (args) => timeScans(args, (prefix) => peer.scan({ prefix }));

/**
 * After a browser relaunch: times opening the store until `key` is read
 * (firstMs) and until every record is read (allMs, a scan of the whole
 * store), from one start. The module is loaded by preload() first, so that
 * its time is a phase of its own (openStore would await the same load).
 * `phases`: where the time to the first read went, from debugTimings (each
 * phase's sum; `storage open` and `after the restore` are the gaps around
 * the restore, placed by the time each phase was reported).
 */
export async function peersOpen({ name, records, key }) {
  const reports = [];
  const t0 = now();
  await preload();
  const tModule = now();
  const s = await openStore(name, { autosave: false, debugTimings: (phase, ms) => reports.push({ phase, ms, at: now() }) });
  const tOpen = now();
  const first = s.get(key);
  const tFirst = now();
  const all = s.scan();
  const tAll = now();
  checkOpened(key, first, all, records);
  peer = s;
  const sums = {};
  for (const r of reports) sums[r.phase] = (sums[r.phase] ?? 0) + r.ms;
  const head = reports.find((r) => r.phase === 'restore.idb-head');
  const fromIdb = reports.find((r) => r.phase === 'restore.from-idb');
  const phases = {
    'module instantiate': tModule - t0,
    ...(head ? { 'storage open': head.at - head.ms - tModule } : {}),
    ...sums,
    ...(fromIdb ? { 'after the restore': tOpen - fromIdb.at } : {}),
    'first get': tFirst - tOpen,
  };
  return { firstMs: tFirst - t0, allMs: tAll - t0, phases };
}

// --- transactions: the ledger's transfer over 1M accounts -----------------

let ledgerStore;

export async function ledgerSetup({ name, accounts }) {
  ledgerStore = await openStore(name, { ...STORE_OPTIONS, module: ledgerModule, durability: 'strict' });
  const t0 = now();
  const batch = 250_000;
  for (let first = 0; first < accounts; first += batch) {
    const builderArgs = new flatbuffers.Builder(64);
    // open_account through the Ledger helper would do the same; kept inline to batch it.
    const { OpenAccount } = await import('/ledger/js/ledger.js');
    builderArgs.finish(OpenAccount.createOpenAccount(builderArgs, first, Math.min(batch, accounts - first), BigInt(INITIAL_BALANCE)));
    await ledgerStore.call('open_account', builderArgs.asUint8Array());
  }
  return { ms: now() - t0 };
}

/** C++ fibers: `transfer_batch` calls of `batch` transfers (arguments encoded before the clock starts). */
export async function transfersFibers({ n, accounts, seed, batch }) {
  const t = transfers(n, accounts, seed);
  const calls = [];
  for (let i = 0; i < n; i += batch) calls.push(encodeTransferBatch(t.from, t.to, t.amount, i, Math.min(n, i + batch)));
  let applied = 0;
  const t0 = now();
  for (const args of calls) applied += decodeTransferResult(await ledgerStore.call('transfer_batch', args)).applied;
  const ms = now() - t0;
  return { ms, perSecond: n / (ms / 1000), applied };
}

/**
 * Times `n` ledger transfers from JS, each run as `atomically(fn)`: fn reads the
 * two FlatBuffers records and writes both through the `tx` it is given.
 */
function timeTransfers({ n, accounts, seed }, atomically) {
  const t = transfers(n, accounts, seed);
  const builder = new flatbuffers.Builder(64);
  const encode = (id, balance, count) => {
    builder.clear();
    builder.finish(Account.createAccount(builder, id, balance, count));
    return builder.asUint8Array();
  };
  const keys = new Array(accounts);
  // As ledger.cc's transfer does: a record's fields are changed in place
  // (flatc --gen-mutable), so it keeps its size; one without the field is
  // encoded again.
  const set = (account, bytes, id, balance, count) =>
    account.mutate_balance(balance) && account.mutate_transfers(count) ? bytes : encode(id, balance, count);
  let applied = 0;
  let recordBytes; // of the records as stored (what each get and put moves)
  const t0 = now();
  for (let i = 0; i < n; ++i) {
    const from = t.from[i], to = t.to[i], amount = BigInt(t.amount[i]);
    if (from === to) continue;
    const kf = (keys[from] ??= accountKey(from)), kt = (keys[to] ??= accountKey(to));
    atomically((tx) => {
      const fb = tx.get(kf), gb = tx.get(kt);
      recordBytes ??= fb.length;
      const f = Account.getRootAsAccount(new flatbuffers.ByteBuffer(fb));
      const g = Account.getRootAsAccount(new flatbuffers.ByteBuffer(gb));
      if (f.balance() < amount) return;
      tx.put(kf, set(f, fb, from, f.balance() - amount, f.transfers() + 1n));
      tx.put(kt, set(g, gb, to, g.balance() + amount, g.transfers() + 1n));
      ++applied;
    });
  }
  const ms = now() - t0;
  return { ms, perSecond: n / (ms / 1000), applied, recordBytes };
}

/** From JS through the API: one store.transaction per transfer (two gets, two puts of the FlatBuffers records). */
export async function transfersJs(args) {
  return timeTransfers(args, (fn) => ledgerStore.transaction(fn));
}

/**
 * Attribution of transfersJs: the same transfers and FlatBuffers work, straight on
 * the C ABI (begin, get, get, put, put, end), reaching past the API into the
 * store's engine and handle (private fields): no Store, Access or pending log, no
 * checks. transfersJs less this is what keepstate's JS layer costs.
 */
export async function transfersAbi(args) {
  const r = ledgerStore.debugReplica, e = r.wasm, m = e.module, h = r.handle;
  const tx = {
    get(key) {
      m._keepstate_store_get(h, 1, e.scratch, e.stageKey(key));
      return e.outBytes();
    },
    put(key, value) {
      const keyLen = e.stageKey(key, value.length);
      m._keepstate_store_put(h, 1, e.scratch, keyLen, e.scratch + keyLen, e.stageValue(keyLen, value));
    },
  };
  return timeTransfers(args, (fn) => {
    m._keepstate_store_begin(h);
    fn(tx);
    m._keepstate_store_end(h, 1);
  });
}

// --- put/get from a user's seat (run.mjs "API") ---------------------------

let apiStore;

/** A store with openStore's defaults (follow, rebase, watch machinery on), autosave off: no commit runs between the timed loops. */
export async function apiSetup({ name }) {
  apiStore = await openStore(name, { autosave: false });
  return { ms: 0 };
}

/** `n` puts of fresh keys into an empty state (reload() drops the previous run's), then `n` gets of them. */
export async function apiRun(args) {
  await apiStore.reload();
  return timePutGet(args, (key, value) => apiStore.put(key, value), (key) => apiStore.get(key));
}
