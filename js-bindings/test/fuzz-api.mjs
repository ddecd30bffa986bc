// The API fuzzer (issue 23): random sequences of the public API — put,
// putJSON, delete, reads, scans, transactions (throwing ones, async ones,
// nested ones and other misuse), commit, reload, close and reopen,
// export and import, deleteStore — with bad inputs mixed in, run over one
// backend (the memory backend or fake-indexeddb) and checked against a model.
//
// The model: a Map of what was committed and a Map of what is pending (a
// value, or null for a delete); the state a reader sees is the committed map
// with the pending one laid over it. Single writer per store name, autosave
// off, so every version is predictable exactly.
//
// Invariants checked after every operation:
//   - store.scan() equals the model's visible state, key order and bytes;
//   - store.version is the model's (it only grows, except that deleteStore
//     starts the store again at 0), and a store with pending writes is dirty;
//   - every error keepstate throws or rejects with is a KeepstateError with a
//     code (a transaction's fn's own error is rethrown as it was);
//   - after any error the store still works (a put/get round trip) and a
//     second store on the same wasm module (the bystander) still holds its own
//     content;
//   - no promise rejects unhandled.
//
// A run is a list of operations generated from one seed (so it replays
// exactly); on a failure the list is shrunk to a short sequence that still
// fails the same way, and the error message carries the seed, the shrunk
// sequence and the command that replays it.
import {
  openStore,
  importStore,
  deleteStore,
  KeepstateError,
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
} from '../dist/node.js';
import { freshIndexedDB, memoryDirectory, uniqueName } from './helpers.mjs';

// --- Seeded randomness ---------------------------------------------------------------

/** mulberry32: a small, fast PRNG with a 32-bit state; the same seed gives the same sequence. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (list) => list[Math.floor(next() * list.length)],
    /** One of `table`'s [weight, value] rows, by weight. */
    weighted(table) {
      let r = next() * table.reduce((n, [w]) => n + w, 0);
      for (const [w, v] of table) if ((r -= w) < 0) return v;
      return table[table.length - 1][1];
    },
  };
  return rng;
}

/** A seed from the clock and Math.random (printed, so any run can be replayed). */
export function freshSeed() {
  return (Date.now() ^ Math.floor(Math.random() * 2 ** 32)) >>> 0;
}

// --- Inputs -----------------------------------------------------------------------------

const MAX_KEY_BYTES = 1024;
const MAX_VALUE_BYTES = 16 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Keys collide on purpose: a small alphabet, some of it non-ASCII, and the longest keys allowed.
const KEYS = [
  'a', 'b', 'c', 'd', 'ab', 'abc', 'a/1', 'a/2', 'a/10', 'b/x', 'B', 'é', 'e\u0301', '中文', '😀', '😀x',
  '\u0000', 'a\u0000', '\uffff', '\ue000', 'x'.repeat(MAX_KEY_BYTES), '中'.repeat(341) + 'x',
];
/** Keys keepstate must refuse with InvalidArgumentError (empty, too long, lone surrogates, not strings). */
const BAD_KEYS = [
  () => '', () => 'x'.repeat(MAX_KEY_BYTES + 1), () => '中'.repeat(342), () => '\ud800', () => 'a\udc00b', () => '😀'.slice(0, 1),
  () => 1, () => null, () => undefined, () => ({}), () => ['a'], () => Symbol('k'), () => new String('a'), () => 12n, () => true,
];
// Big buffers, made once: a run must stay fast.
let limitValue = null;
let overValue = null;
let overText = null;
const limitBytes = () => (limitValue ??= new Uint8Array(MAX_VALUE_BYTES).fill(7));
const overBytes = () => (overValue ??= new Uint8Array(MAX_VALUE_BYTES + 1));
const overString = () => (overText ??= 'x'.repeat(MAX_VALUE_BYTES + 1));

/** [description, make()] of a value; `bad`: keepstate must refuse it. */
function genValue(rng) {
  if (rng.chance(0.07)) {
    return rng.pick([
      ['"\\ud800"', () => 'v\ud800'],
      ['16 MiB + 1 bytes', overBytes],
      ['16 MiB + 1 chars', overString],
      ['18 MiB of UTF-8', () => '中'.repeat(6 * 1024 * 1024)],
      ['5', () => 5], ['null', () => null], ['undefined', () => undefined],
      ['ArrayBuffer(3)', () => new ArrayBuffer(3)], ['DataView', () => new DataView(new ArrayBuffer(2))],
      ['Int8Array', () => new Int8Array([1, 2])], ['Uint16Array', () => new Uint16Array([1])],
      ['Uint8ClampedArray', () => new Uint8ClampedArray([1])], ['[1,2]', () => [1, 2]], ['{}', () => ({})],
    ]).concat(true);
  }
  const n = rng.int(1 << 30);
  return rng.weighted([
    [30, [`"v${n % 100}"`, () => `v${n % 100}`]],
    [5, ['""', () => '']],
    [5, ['"中😀é"', () => `中😀é${n % 10}`]],
    [20, [`bytes(${n % 64})#${n}`, () => randomBytes(n, n % 64)]],
    [4, [`bytes(${n % 5000})#${n}`, () => randomBytes(n, n % 5000)]],
    [3, [`view(${n % 40})`, () => randomBytes(n, 64).subarray(3, 3 + (n % 40))]],
    [3, ['Buffer "buf"', () => Buffer.from(`buf${n % 7}`)]],
    [1, ['64 KiB', () => new Uint8Array(65536).fill(n & 0xff)]],
    [0.3, ['1 MiB', () => new Uint8Array(1 << 20).fill(n & 0xff)]],
    [0.02, ['16 MiB (the limit)', limitBytes]],
  ]).concat(false);
}

function randomBytes(seed, length) {
  const r = prng(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; ++i) out[i] = r.int(256);
  return out;
}

function genKey(rng) {
  if (rng.chance(0.06)) return { bad: true, make: rng.pick(BAD_KEYS) };
  const key = rng.pick(KEYS);
  return { bad: false, make: () => key };
}

const JSON_VALUES = [
  [false, () => ({ a: 1 })], [false, () => [1, 'x', null]], [false, () => 'str'], [false, () => 0], [false, () => -1.5],
  [false, () => true], [false, () => null], [false, () => ({ deep: { list: [1, { k: '中😀' }] } })], [false, () => '\ud800'],
  [false, () => ({ toJSON: () => 'custom' })],
  [true, () => undefined], [true, () => 10n], [true, () => ({ n: 1n })], [true, () => () => 1], [true, () => Symbol('s')],
  [true, () => { const o = {}; o.self = o; return o; }], [true, () => ({ toJSON() { throw new Error('toJSON failed'); } })],
];

function genScanOptions(rng) {
  if (rng.chance(0.06)) {
    return { bad: true, options: rng.pick([
      () => null, () => 'x', () => ({ limit: -1 }), () => ({ limit: 1.5 }), () => ({ limit: '2' }), () => ({ limit: NaN }),
      () => ({ prefix: 5 }), () => ({ start: 'x'.repeat(MAX_KEY_BYTES + 1) }), () => ({ end: '\udfff' }), () => ({ prefix: {} }),
    ]) };
  }
  if (rng.chance(0.4)) return { bad: false, options: () => undefined };
  const o = {};
  if (rng.chance(0.4)) o.prefix = rng.pick(['a', 'a/', 'b', '中', '😀', '\u0000', 'z', '']);
  if (rng.chance(0.3)) o.start = rng.pick(KEYS.slice(0, 16));
  if (rng.chance(0.3)) o.end = rng.pick(KEYS.slice(0, 16));
  if (rng.chance(0.3)) o.limit = rng.int(5);
  if (rng.chance(0.4)) o.reverse = true;
  return { bad: false, options: () => ({ ...o }) };
}

// --- Operations -------------------------------------------------------------------------

/** A write or read inside a transaction (or on the store: the same kinds). */
function genAccess(rng) {
  const key = genKey(rng);
  return rng.weighted([
    [40, () => { const [desc, make, bad] = genValue(rng); return { t: 'put', key, desc, make, bad: bad || key.bad }; }],
    [8, () => { const [bad, make] = rng.pick(JSON_VALUES); return { t: 'putJSON', key, make, bad: bad || key.bad }; }],
    [20, () => ({ t: 'delete', key, bad: key.bad })],
    [20, () => ({ t: 'read', how: rng.pick(['get', 'getText', 'getJSON', 'has']), key, bad: key.bad })],
    [8, () => { const s = genScanOptions(rng); return { t: 'scan', options: s.options, bad: s.bad }; }],
  ])();
}

const TXN_ENDS = [
  [30, 'return'], // applied
  [20, 'throw'], // fn throws its own error: nothing applied, the error rethrown as it was
  [6, 'async'], // fn returns a promise (and writes after an await): refused, nothing applied
  [5, 'nested'], // store.transaction inside fn, not caught: busy, nothing applied
  [5, 'nested-caught'], // the same, caught by fn, which returns: applied
  [5, 'store-write'], // store.put inside fn, caught: busy, the transaction goes on
  [4, 'commit-inside'], // store.commit() inside fn
  [4, 'reload-inside'], // store.reload() inside fn: runs after fn, drops everything pending
  [3, 'close-inside'], // store.close() inside fn: the transaction lands, close commits it
  [4, 'use-after'], // tx kept and used after the transaction: ClosedError
  [3, 'not-a-function'], // transaction(42): InvalidArgumentError
];

/** A generated operation: plain data, replayable and printable. */
function genOp(rng) {
  const kind = rng.weighted([
    [60, 'access'], [14, 'txn'], [9, 'commit'], [3, 'reload'], [3, 'reopen'], [3, 'export'], [1, 'import-old'],
    [1.5, 'import-bad'], [1, 'delete-store'], [2, 'twin'], [2, 'bystander'], [1, 'closed-use'],
  ]);
  switch (kind) {
    case 'access':
      return genAccess(rng);
    case 'txn': {
      const steps = Array.from({ length: rng.int(6) }, () => genAccess(rng));
      return { t: 'txn', steps, end: rng.weighted(TXN_ENDS) };
    }
    case 'export':
      return { t: 'export', into: rng.weighted([[3, 'new'], [2, 'replace'], [1, 'refused']]), adopt: rng.chance(0.5) };
    case 'import-old':
      return { t: 'import-old', pick: rng.int(1 << 30) };
    case 'import-bad':
      return { t: 'import-bad', how: rng.pick(['garbage', 'truncated', 'flipped', 'empty', 'not-a-source']), at: rng.int(1 << 30) };
    default:
      return { t: kind };
  }
}

/** Generates a run's operations from its seed. */
export function generateRun(seed, length) {
  const rng = prng(seed);
  const n = length ?? 40 + rng.int(260);
  return Array.from({ length: n }, () => genOp(rng));
}

function showKey(key) {
  const k = key.make();
  if (typeof k !== 'string') return typeof k === 'symbol' ? 'Symbol' : `(${typeof k}) ${String(k)}`;
  return k.length > 12 ? `${JSON.stringify(k.slice(0, 6))}…(${k.length} chars)` : JSON.stringify(k);
}

/** One line per operation, as it would be written in a test. */
export function describe(op) {
  switch (op.t) {
    case 'put': return `put(${showKey(op.key)}, ${op.desc})`;
    case 'putJSON': return `putJSON(${showKey(op.key)}, ${showJSON(op.make)})`;
    case 'delete': return `delete(${showKey(op.key)})`;
    case 'read': return `${op.how}(${showKey(op.key)})`;
    case 'scan': return `scan(${showJSON(op.options)})`;
    case 'txn': return `transaction(tx => { ${op.steps.map((s) => `tx.${describe(s)}`).join('; ')} } ends ${op.end})`;
    case 'export': return `export() then importStore into ${op.into}${op.adopt ? ', kept as the store' : ''}`;
    case 'import-bad': return `importStore(${op.how} file)`;
    default: return op.t;
  }
}

function showJSON(make) {
  try {
    const v = make();
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'function') return 'a function';
    if (typeof v === 'symbol') return 'Symbol';
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v);
  } catch {
    return 'an object JSON cannot write';
  }
}

// --- The model --------------------------------------------------------------------------

const compareKeys = (a, b) => Buffer.compare(encoder.encode(a), encoder.encode(b));

class Model {
  committed = new Map();
  pending = new Map(); // key -> bytes, or null: deleted
  version = 0;

  visible() {
    const out = new Map(this.committed);
    for (const [k, v] of this.pending) v === null ? out.delete(k) : out.set(k, v);
    return out;
  }
  get(key) {
    return this.pending.has(key) ? this.pending.get(key) ?? undefined : this.committed.get(key);
  }
  commitAll() {
    this.committed = this.visible();
    this.pending.clear();
  }
}

/** What scan(options) returns over `state` (a Map), in the engine's order (UTF-8 bytes). */
function expectedScan(state, options = {}) {
  const { prefix, start, end, limit, reverse } = options;
  let keys = [...state.keys()].sort(compareKeys);
  if (prefix !== undefined) keys = keys.filter((k) => Buffer.from(k).subarray(0, Buffer.byteLength(prefix)).equals(Buffer.from(prefix)));
  if (start !== undefined) keys = keys.filter((k) => compareKeys(k, start) >= 0);
  if (end !== undefined) keys = keys.filter((k) => compareKeys(k, end) < 0);
  if (reverse) keys.reverse();
  if (limit) keys = keys.slice(0, limit);
  return keys.map((k) => [k, state.get(k)]);
}

// --- Running ----------------------------------------------------------------------------

/** A broken invariant (not an error of keepstate's own: the fuzzer found something). */
class Broken extends Error {
  constructor(message) {
    super(message);
    this.name = 'Broken';
  }
}

/** Runs `start` (which may throw at once or reject later); resolves with { value } or { error }. */
function settle(start) {
  try {
    return Promise.resolve(start()).then((value) => ({ value }), (error) => ({ error }));
  } catch (error) {
    return Promise.resolve({ error });
  }
}

/** A transaction's fn throws this: keepstate must rethrow it as it is. */
class AppError extends Error {}

function sameBytes(a, b) {
  return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
}

function showBytes(b) {
  if (b === undefined) return 'undefined';
  if (!(b instanceof Uint8Array)) return `(${typeof b}) ${String(b)}`;
  return b.length > 24 ? `${b.length} bytes ${Buffer.from(b.subarray(0, 12)).toString('hex')}…` : JSON.stringify(decoder.decode(b));
}

function showError(e) {
  return `${e?.constructor?.name ?? typeof e}${e?.code ? ` [${e.code}]` : ''}: ${e?.message ?? String(e)}`;
}

/** keepstate's own error must be typed: a KeepstateError with a code string. */
function assertTyped(e, what) {
  if (e instanceof Broken) throw e;
  if (!(e instanceof KeepstateError) || typeof e.code !== 'string' || e.code.length === 0) {
    throw new Broken(`${what}: an untyped error ${showError(e)}${e?.stack ? `\n${e.stack}` : ''}`);
  }
}

/** The backend of one run: openStore/deleteStore/importStore options. */
function backendOptions(backend, rng) {
  if (backend === 'memory') return { storage: 'memory' };
  if (backend === 'indexeddb') {
    // Half the runs with the OPFS copy (an in-memory directory): its commits and deleteStore's removal run too.
    return rng.chance(0.5) ? { indexedDB: freshIndexedDB(), opfs: memoryDirectory() } : { indexedDB: freshIndexedDB() };
  }
  throw new Error(`unknown backend ${backend}`);
}

/**
 * Runs `ops` on a fresh store of `backend`; resolves with counts, or rejects with Broken
 * (the index of the operation that broke an invariant in `.at`).
 */
export async function execute(ops, { backend, seed, deadline = Infinity }) {
  const rng = prng(seed ^ 0x9e3779b9);
  const where = backendOptions(backend, rng);
  const open = (name) => openStore(name, { ...where, autosave: false });
  const names = new Set();
  const fresh = () => {
    const name = uniqueName('fuzz');
    names.add(name);
    return name;
  };
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);

  let name = fresh();
  let store = await open(name);
  let model = new Model();
  const exports = []; // { blob, state: Map } of earlier exports, for replacing imports
  // The bystander: another store on the same module, with committed and pending content of its own.
  const bystanderName = fresh();
  const bystander = await open(bystanderName);
  const bystanderModel = new Model();
  bystander.put('own', 'committed');
  bystander.put('own/2', new Uint8Array([1, 2, 3]));
  await bystander.commit();
  bystander.put('own/pending', 'pending');
  bystanderModel.version = 1;
  bystanderModel.committed = new Map([['own', encoder.encode('committed')], ['own/2', new Uint8Array([1, 2, 3])]]);
  bystanderModel.pending.set('own/pending', encoder.encode('pending'));
  let errors = 0;
  let i = 0;

  // --- checks ---
  const checkState = (s, m, what) => {
    const got = s.scan();
    const want = expectedScan(m.visible());
    if (got.length !== want.length || got.some(([k, v], j) => k !== want[j][0] || !sameBytes(v, want[j][1]))) {
      const show = (list) => list.map(([k, v]) => `${showKey({ make: () => k })}=${showBytes(v)}`).join(', ');
      throw new Broken(`${what}: scan() is [${show(got)}]\n  the model says [${show(want)}]`);
    }
    if (s.version !== m.version) throw new Broken(`${what}: version is ${s.version}, the model says ${m.version}`);
    if (m.pending.size > 0 && !s.dirty) throw new Broken(`${what}: ${m.pending.size} pending writes but the store is not dirty`);
  };
  const checkBystander = () => checkState(bystander, bystanderModel, 'the bystander store (same module)');
  // After an error: the store still takes a write and reads it back; the bystander is intact.
  const stillWorks = () => {
    const probe = `~probe`;
    const value = encoder.encode(`after error ${errors}`);
    try {
      store.put(probe, value);
      if (!sameBytes(store.get(probe), value)) throw new Broken('after an error: a put is not read back');
      store.delete(probe);
    } catch (e) {
      if (e instanceof Broken) throw e;
      throw new Broken(`after an error the store is unusable: ${showError(e)}`);
    }
    model.pending.set(probe, null);
    checkBystander();
  };
  /** Judges what `fn` did: `bad` says whether keepstate must refuse it (with `expectClass`, unless null). */
  const judge = (what, bad, expectClass, outcome) => {
    if ('error' in outcome) {
      const e = outcome.error;
      assertTyped(e, what);
      if (!bad) throw new Broken(`${what}: unexpected ${showError(e)}`);
      if (expectClass !== null && !(e instanceof expectClass)) throw new Broken(`${what}: expected ${expectClass.name}, got ${showError(e)}`);
      ++errors;
      return { failed: e };
    }
    if (bad) throw new Broken(`${what}: accepted, but should have been refused`);
    return { result: outcome.value };
  };
  const attemptSync = (what, bad, fn, expectClass = InvalidArgumentError) => {
    let outcome;
    try {
      outcome = { value: fn() };
    } catch (error) {
      outcome = { error };
    }
    return judge(what, bad, expectClass, outcome);
  };
  const attempt = async (what, bad, fn, expectClass = InvalidArgumentError) => {
    let outcome;
    try {
      outcome = { value: await fn() };
    } catch (error) {
      outcome = { error };
    }
    return judge(what, bad, expectClass, outcome);
  };

  // --- one read or write on `target` (the store, or a transaction's tx) with `m` its model view ---
  const access = (op, target, m, inTxn) => {
    const what = (inTxn ? 'tx.' : '') + describe(op);
    switch (op.t) {
      case 'put': {
        const value = op.make();
        const expected = op.bad ? null : typeof value === 'string' ? encoder.encode(value) : Uint8Array.from(value); // (Buffer's slice() is a view)
        const { failed } = attemptSync(what, op.bad, () => target.put(op.key.make(), value));
        if (failed) return true;
        m.set(op.key.make(), expected);
        // The store took a copy: changing the caller's array afterwards changes nothing.
        if (value instanceof Uint8Array && value !== limitValue && value.length > 0) value.fill(0xee);
        return false;
      }
      case 'putJSON': {
        const value = op.make();
        const { failed } = attemptSync(what, op.bad, () => target.putJSON(op.key.make(), value));
        if (failed) return true;
        m.set(op.key.make(), encoder.encode(JSON.stringify(value)));
        return false;
      }
      case 'delete': {
        const key = op.key.make();
        const existed = !op.bad && m.get(key) != null;
        const { failed, result } = attemptSync(what, op.bad, () => target.delete(key));
        if (failed) return true;
        if (result !== existed) throw new Broken(`${what} returned ${result}, the model says ${existed}`);
        if (existed) m.set(key, null);
        return false;
      }
      case 'read': {
        const key = op.key.make();
        const want = op.bad ? undefined : m.get(key) ?? undefined;
        let jsonBad = false;
        let wantValue;
        if (op.how === 'has') wantValue = want !== undefined;
        else if (op.how === 'get') wantValue = want;
        else if (op.how === 'getText') wantValue = want === undefined ? undefined : decoder.decode(want);
        else if (want !== undefined) {
          try {
            wantValue = JSON.parse(decoder.decode(want));
          } catch {
            jsonBad = true;
          }
        }
        const { failed, result } = attemptSync(what, op.bad || jsonBad, () => target[op.how](key), jsonBad && !op.bad ? KeepstateError : InvalidArgumentError);
        if (failed) {
          if (jsonBad && !op.bad && failed.code !== 'invalid-argument') throw new Broken(`${what}: code ${failed.code} for a value that is not JSON`);
          return true;
        }
        const same = op.how === 'get' ? (result === undefined ? want === undefined : sameBytes(result, want))
          : JSON.stringify(result) === JSON.stringify(wantValue) && typeof result === typeof wantValue;
        if (!same) throw new Broken(`${what} returned ${op.how === 'get' ? showBytes(result) : JSON.stringify(result)}, the model says ${op.how === 'get' ? showBytes(want) : JSON.stringify(wantValue)}`);
        if (op.how === 'get' && result !== undefined && result.length > 0) {
          result.fill(0xdd); // the caller owns what get returns: the stored value is unchanged
          if (!sameBytes(target.get(key), want)) throw new Broken(`${what}: changing the array get returned changed the stored value`);
        }
        return false;
      }
      case 'scan': {
        const options = op.options();
        const { failed, result } = attemptSync(what, op.bad, () => target.scan(options));
        if (failed) return true;
        const want = expectedScan(m.state(), options);
        if (result.length !== want.length || result.some(([k, v], j) => k !== want[j][0] || !sameBytes(v, want[j][1]))) {
          throw new Broken(`${what} returned [${result.map(([k]) => JSON.stringify(k)).join(', ')}], the model says [${want.map(([k]) => JSON.stringify(k)).join(', ')}]`);
        }
        return false;
      }
      default:
        throw new Error(`not an access: ${op.t}`);
    }
  };

  /** The store's model as an access target: writes go to pending. */
  const storeView = () => ({
    get: (k) => model.get(k),
    set: (k, v) => model.pending.set(k, v),
    state: () => model.visible(),
  });

  // --- operations on the store ---
  /** deleteStore(name); `open`, a store of that name, hears of it as other tabs do (a notice) and closes. */
  const deleteHeard = async (what, storeName, open) => {
    const heard = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      open.on('deleted', () => resolve(true, clearTimeout(timer)));
    });
    await attempt(what, false, () => deleteStore(storeName, where));
    if (!(await heard)) throw new Broken(`${what}: the open store of the name heard no 'deleted' event within 5 s`);
  };

  const closeAndCheck = async (what) => {
    const dirty = store.dirty;
    await attempt(`${what}: close()`, false, () => store.close());
    if (dirty) ++model.version;
    model.commitAll();
    if (store.version !== model.version) throw new Broken(`${what}: a closed store's version is ${store.version}, the model says ${model.version}`);
    await attempt(`${what}: a second close()`, false, () => store.close());
    await attempt(`${what}: get() on the closed store`, true, () => store.get('a'), ClosedError);
    await attempt(`${what}: put() on the closed store`, true, () => store.put('a', 'v'), ClosedError);
    await attempt(`${what}: commit() on the closed store`, true, () => store.commit(), ClosedError);
  };

  const txn = async (op) => {
    const what = describe(op);
    if (op.end === 'not-a-function') {
      await attempt(what, true, () => store.transaction(42));
      return true;
    }
    const overlay = new Map();
    const view = {
      get: (k) => (overlay.has(k) ? overlay.get(k) ?? undefined : model.get(k)),
      set: (k, v) => overlay.set(k, v),
      state: () => {
        const out = model.visible();
        for (const [k, v] of overlay) v === null ? out.delete(k) : out.set(k, v);
        return out;
      },
    };
    const before = model.visible();
    const sideEffects = []; // promises fn started (commit, reload, close)
    let kept = null;
    let innerFailure = null;
    const appError = new AppError('fn failed');
    const fn = (tx) => {
      // Steps run synchronously: access() is async only for its awaits of sync results.
      for (const step of op.steps) {
        try {
          access(step, tx, view, true);
        } catch (e) {
          if (e instanceof Broken) innerFailure = e;
          throw e;
        }
      }
      switch (op.end) {
        case 'throw':
          throw appError;
        case 'async':
          return (async () => {
            await null;
            tx.put('late', 'x'); // the transaction ended: this rejects inside fn's promise
          })();
        case 'nested':
          store.transaction((inner) => inner.put('nested', 'x'));
          throw new Broken('a nested transaction was not refused');
        case 'nested-caught':
        case 'store-write':
          try {
            if (op.end === 'nested-caught') store.transaction((inner) => inner.put('nested', 'x'));
            else store.put('direct', 'x');
          } catch (e) {
            if (!(e instanceof KeepstateError) || e.code !== 'busy') innerFailure = new Broken(`${op.end} inside fn: expected busy, got ${showError(e)}`);
            return 'ok';
          }
          innerFailure = new Broken(`${op.end} inside fn was not refused`);
          return 'ok';
        case 'commit-inside':
          sideEffects.push(settle(() => store.commit()));
          return 'ok';
        case 'reload-inside':
          sideEffects.push(settle(() => store.reload()));
          return 'ok';
        case 'close-inside':
          sideEffects.push(settle(() => store.close()));
          return 'ok';
        case 'use-after':
          kept = tx;
          return 'ok';
        default:
          return 'ok';
      }
    };
    const dirtyBefore = store.dirty;
    const versionBefore = model.version;
    let threw = null;
    let result;
    try {
      result = store.transaction(fn);
    } catch (e) {
      threw = e;
    }
    const dirtyAfter = store.dirty; // what a close() started inside fn commits
    if (innerFailure !== null) throw innerFailure;
    const applied = threw === null;
    const mustThrow = ['throw', 'async', 'nested'].includes(op.end);
    if (mustThrow && applied) throw new Broken(`${what}: returned ${String(result)} instead of throwing`);
    if (!mustThrow && !applied) {
      assertTyped(threw, what);
      throw new Broken(`${what}: unexpected ${showError(threw)}`);
    }
    if (op.end === 'throw' && threw !== appError) throw new Broken(`${what}: fn's error was not rethrown as it was: ${showError(threw)}`);
    if (op.end === 'async' && !(threw instanceof InvalidArgumentError)) throw new Broken(`${what}: expected InvalidArgumentError, got ${showError(threw)}`);
    if (op.end === 'nested' && !(threw instanceof KeepstateError && threw.code === 'busy')) throw new Broken(`${what}: expected busy, got ${showError(threw)}`);
    if (applied) for (const [k, v] of overlay) model.pending.set(k, v);
    // Nothing applied: the visible state is what it was.
    if (!applied) checkState(store, model, `${what} (nothing applied)`);
    const outcomes = await Promise.all(sideEffects);
    for (const o of outcomes) if (o.error !== undefined) assertTyped(o.error, `${what}: what fn started`);
    if (op.end === 'commit-inside') {
      const [o] = outcomes;
      if (o.error === undefined) {
        // It committed what was there before the transaction, or nothing.
        if (o.value.version === versionBefore + 1) {
          model.version = o.value.version;
          const visible = model.visible();
          model.committed = before;
          model.pending = new Map();
          for (const k of new Set([...visible.keys(), ...before.keys()])) if (!sameBytes(visible.get(k), before.get(k))) model.pending.set(k, visible.get(k) ?? null);
        } else if (o.value.version !== versionBefore || dirtyBefore) {
          throw new Broken(`${what}: the commit started inside fn resolved ${JSON.stringify(o.value)} (version was ${versionBefore})`);
        }
      }
    }
    if (op.end === 'reload-inside') {
      if (outcomes[0].error !== undefined) throw new Broken(`${what}: reload() started inside fn rejected: ${showError(outcomes[0].error)}`);
      model.pending.clear();
    }
    if (op.end === 'close-inside') {
      if (outcomes[0].error !== undefined) throw new Broken(`${what}: close() started inside fn rejected: ${showError(outcomes[0].error)}`);
      if (dirtyAfter) ++model.version;
      model.commitAll();
      if (store.version !== model.version) throw new Broken(`${what}: the closed store's version is ${store.version}, the model says ${model.version}`);
      store = await open(name);
    }
    if (op.end === 'use-after') await attempt(`${what}: tx.put after the transaction`, true, () => kept.put('late', 'x'), ClosedError);
    return !applied || outcomes.some((o) => o.error !== undefined) || op.end === 'use-after';
  };

  const exportImport = async (op) => {
    const what = describe(op);
    const dirty = store.dirty;
    const { result: blob } = await attempt(`${what}: export()`, false, () => store.export());
    if (dirty) ++model.version;
    model.commitAll();
    checkState(store, model, `${what}: after export()`);
    exports.push({ blob, state: new Map(model.committed) });
    if (op.into === 'refused') {
      if (model.version === 0 && model.committed.size === 0) return false;
      await attempt(`${what}: importStore over a store with data, without replace`, true, () => importStore(name, blob, { ...where, autosave: false }));
      return true;
    }
    if (op.into === 'new') {
      const other = fresh();
      const { result: imported } = await attempt(`${what}: importStore("${other}")`, false, () => importStore(other, blob, { ...where, autosave: false }));
      const m = new Model();
      m.committed = new Map(model.committed);
      m.version = imported.version;
      if (imported.version < 1) throw new Broken(`${what}: the imported store is at version ${imported.version}`);
      checkState(imported, m, `${what}: the imported store`);
      if (op.adopt) {
        await closeAndCheck(what);
        store = imported;
        name = other;
        model = m;
      } else {
        await deleteHeard(`${what}: deleteStore the import`, other, imported);
        await attempt(`${what}: the deleted import`, true, () => imported.scan(), ClosedError);
      }
      return false;
    }
    // replace: the store's own name, from this export or an older one.
    return replaceFrom(what, exports[op.adopt ? exports.length - 1 : 0]);
  };

  const replaceFrom = async (what, snapshot) => {
    await closeAndCheck(what);
    const { result: imported } = await attempt(`${what}: importStore("${name}", { replace: true })`, false, () =>
      importStore(name, snapshot.blob, { ...where, autosave: false, replace: true }),
    );
    if (imported.version <= model.version) throw new Broken(`${what}: the replacing import is at version ${imported.version}, not above ${model.version}`);
    model.version = imported.version;
    model.committed = new Map(snapshot.state);
    model.pending.clear();
    store = imported;
    return false;
  };

  const importBad = async (op) => {
    const what = describe(op);
    const good = exports.length > 0 ? new Uint8Array(await exports[op.at % exports.length].blob.arrayBuffer()) : null;
    let source;
    let expect = CorruptionError;
    switch (op.how) {
      case 'garbage': source = randomBytes(op.at, 100 + (op.at % 9000)); break;
      case 'truncated': source = good ? good.subarray(0, op.at % good.length) : randomBytes(op.at, 64); break;
      case 'flipped': {
        source = good ? good.slice() : randomBytes(op.at, 64);
        source[op.at % source.length] ^= 1 << (op.at % 8);
        break;
      }
      case 'empty': source = new Uint8Array(0); break;
      default: source = { not: 'a source' }; expect = InvalidArgumentError;
    }
    const other = fresh();
    // A damaged file is refused (typed), whatever the damage; nothing is created for it.
    const r = await attempt(what, true, () => importStore(other, source, { ...where, autosave: false }), null);
    if (r.failed === undefined) return false;
    if (!(r.failed instanceof expect) && !(expect === CorruptionError && r.failed instanceof KeepstateError && ['corruption', 'unsupported', 'invalid-argument'].includes(r.failed.code))) {
      throw new Broken(`${what}: expected ${expect.name}, got ${showError(r.failed)}`);
    }
    return true;
  };

  const step = async (op) => {
    switch (op.t) {
      case 'put': case 'putJSON': case 'delete': case 'read': case 'scan':
        return access(op, store, storeView(), false);
      case 'txn':
        return txn(op);
      case 'commit': {
        const dirty = store.dirty;
        const { result } = await attempt('commit()', false, () => store.commit());
        if (dirty) ++model.version;
        model.commitAll();
        if (result.version !== model.version) throw new Broken(`commit() resolved version ${result.version}, the model says ${model.version}`);
        if (store.dirty) throw new Broken('dirty after commit()');
        return false;
      }
      case 'reload':
        await attempt('reload()', false, () => store.reload());
        model.pending.clear();
        return false;
      case 'reopen':
        await closeAndCheck('close and reopen');
        store = await open(name);
        return false;
      case 'closed-use': {
        // A closed store refuses reads, writes and commits with ClosedError; the name opens again.
        await closeAndCheck('closed store');
        store = await open(name);
        return true;
      }
      case 'export':
        return exportImport(op);
      case 'import-old':
        if (exports.length === 0) return false;
        return replaceFrom('importStore of an older export { replace: true }', exports[op.pick % exports.length]);
      case 'import-bad':
        return importBad(op);
      case 'delete-store': {
        const deleted = store;
        await deleteHeard('deleteStore', name, deleted);
        await attempt('get() on a deleted store', true, () => deleted.get('a'), ClosedError);
        await attempt('put() on a deleted store', true, () => deleted.put('a', 'v'), ClosedError);
        await attempt('close() of a deleted store', false, () => deleted.close());
        store = await open(name);
        model = new Model();
        checkState(store, model, 'the store opened after deleteStore');
        return true;
      }
      case 'twin': {
        // A second store of the same name sees exactly what was committed.
        const twin = await open(name);
        const m = new Model();
        m.committed = model.committed;
        m.version = model.version;
        checkState(twin, m, 'a second store of the same name');
        await attempt('close() of the second store', false, () => twin.close());
        return false;
      }
      case 'bystander': {
        const k = `own/${i % 7}`;
        bystander.put(k, `at ${i}`);
        bystanderModel.pending.set(k, encoder.encode(`at ${i}`));
        if (i % 2 === 0) {
          await attempt('bystander commit()', false, () => bystander.commit());
          ++bystanderModel.version;
          bystanderModel.commitAll();
        }
        checkBystander();
        return false;
      }
      default:
        throw new Error(`unknown operation ${op.t}`);
    }
  };

  try {
    for (i = 0; i < ops.length && performance.now() < deadline; ++i) {
      try {
        const hadError = await step(ops[i]);
        checkState(store, model, `after ${describe(ops[i])}`);
        if (hadError) {
          stillWorks();
          checkState(store, model, 'after the round trip that follows an error');
        } else if (i % 16 === 0) {
          checkBystander();
        }
        if (unhandled.length > 0) throw new Broken(`an unhandled rejection: ${showError(unhandled[0])}`);
      } catch (e) {
        if (e instanceof Broken) e.at = i;
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, 0));
    if (unhandled.length > 0) throw Object.assign(new Broken(`an unhandled rejection: ${showError(unhandled[0])}`), { at: ops.length - 1 });
    return { ops: i, errors };
  } finally {
    process.off('unhandledRejection', onUnhandled);
    // deleteStore closes every store of the name (this run's included) and removes its records.
    for (const n of names) await deleteStore(n, where).catch(() => undefined);
  }
}

// --- Driving and shrinking ------------------------------------------------------------------

/** What kind of failure a Broken is, with its particulars (numbers, quoted text) left out. */
function signature(e) {
  return String(e.message).split('\n')[0].replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\d+/g, '#');
}

/**
 * Shrinks a failing run: drops ever smaller chunks of operations while the rest still fails the
 * same way (delta debugging), within `budgetMs`. Resolves with the shortest failing list and its error.
 */
export async function shrink(ops, failure, { backend, seed, budgetMs = 30_000 }) {
  const until = performance.now() + budgetMs;
  const want = signature(failure);
  let best = ops.slice(0, failure.at + 1);
  let bestError = failure;
  const fails = async (candidate) => {
    try {
      await execute(candidate, { backend, seed });
      return null;
    } catch (e) {
      return e instanceof Broken && signature(e) === want ? e : null;
    }
  };
  for (let chunk = Math.max(1, Math.floor(best.length / 2)); chunk >= 1 && performance.now() < until; chunk = Math.floor(chunk / 2)) {
    for (let at = 0; at < best.length && performance.now() < until; ) {
      const candidate = best.slice(0, at).concat(best.slice(at + chunk));
      const e = candidate.length > 0 ? await fails(candidate) : null;
      if (e !== null) {
        best = candidate.slice(0, e.at + 1);
        bestError = e;
      } else {
        at += chunk;
      }
    }
    if (chunk === 1) break;
  }
  return { ops: best, error: bestError };
}

/**
 * Fuzzes `backend` ('memory' or 'indexeddb') for `seconds`: runs of generated operations, each
 * from a seed drawn from `seed`, until the time is up. Resolves with { runs, ops, errors, seconds };
 * rejects with the first failure, shrunk, with the seed that replays it. With `runSeed`, runs only
 * that run (what KEEPSTATE_FUZZ_SEED asks for).
 */
export async function fuzz({ backend, seconds, seed = freshSeed(), runSeed, log = () => {} }) {
  const master = prng(seed);
  const started = performance.now();
  const deadline = runSeed === undefined ? started + seconds * 1000 : Infinity;
  const totals = { runs: 0, ops: 0, errors: 0 };
  do {
    const thisRun = runSeed ?? master.int(2 ** 32);
    const ops = generateRun(thisRun);
    try {
      const r = await execute(ops, { backend, seed: thisRun, deadline });
      ++totals.runs;
      totals.ops += r.ops;
      totals.errors += r.errors;
    } catch (e) {
      if (!(e instanceof Broken)) throw e;
      log(`fuzz-api: ${backend} run ${thisRun} failed at operation ${e.at + 1} of ${ops.length}; shrinking`);
      const small = await shrink(ops, e, { backend, seed: thisRun });
      const lines = small.ops.map((op, j) => `  ${j + 1}. ${describe(op)}`);
      const replay = `KEEPSTATE_FUZZ_SEED=${thisRun} KEEPSTATE_FUZZ_BACKEND=${backend} node --test js-bindings/test/fuzz-api.test.mjs`;
      throw new Error(
        `API fuzzer, ${backend} backend, seed ${thisRun}: ${small.error.message}\n` +
          `a sequence of ${small.ops.length} operations that fails so (shrunk from ${e.at + 1}; the last one broke it):\n${lines.join('\n')}\n` +
          `replay the whole run: ${replay}`,
      );
    }
  } while (runSeed === undefined && performance.now() < deadline); // a replay is one run
  return { ...totals, seconds: (performance.now() - started) / 1000 };
}
