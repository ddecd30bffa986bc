// The one generator of the conformance suite's mutation sequences
// (docs/sync.md, "Determinism"): from a seed, a sequence of 5-200 calls of
// the ledger example's mutators (examples/ledger/ledger.cc) and of the SDK's
// built-in keepstate.put / keepstate.delete, with the points where the
// runner commits. Both runners execute what this writes (sequences.mjs), so
// this file is the only place that decides what is tested.
//
// What it aims at: every path a mutator can take, failures included, since
// a failure must be identical on both sides too (its code and message are
// hashed): insufficient funds, unknown and equal accounts, non-positive and
// huge amounts, accounts that exist, ids past the end, arguments that are
// not FlatBuffers, malformed put arguments, keys too long, account records
// overwritten by puts (the ledger then reports corruption), deletes of keys
// that are absent. Sizes vary so B+tree splits, merges, overflow values and
// freed pages all occur; commits at random points vary which pages are
// captured and returned.
//
// Invariant: a sequence depends only on its seed (mulberry32 over it), never
// on the sequences around it.
import * as flatbuffers from 'flatbuffers';

/** Built-in mutators of the SDK (docs/sync.md, "What syncs"). */
export const BUILTINS = ['keepstate.put', 'keepstate.delete'];

const utf8 = new TextEncoder();

// Pages are compared (export on both sides) for every PAGE_EVERY-th seed.
export const PAGE_EVERY = 50;

/** mulberry32: a small PRNG whose stream depends on nothing but its seed. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // [lo, hi]
  const chance = (p) => next() < p;
  const pick = (items) => items[Math.floor(next() * items.length)];
  // items: [[weight, value], ...]
  const weighted = (items) => {
    let r = next() * items.reduce((s, [w]) => s + w, 0);
    for (const [w, v] of items) if ((r -= w) < 0) return v;
    return items[items.length - 1][1];
  };
  const bytes = (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; ++i) out[i] = next() * 256;
    return out;
  };
  return { next, int, chance, pick, weighted, bytes };
}

// Characters for keys: ASCII and multi-byte UTF-8 (keys are strings in the
// JS API, so every key a store can hold that JS reads back is UTF-8).
const KEY_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789/-_.', 'é', 'ß', '中', '文', '😀', '\u{10FFFF}'];

/**
 * The generator over the ledger's flatc-generated TypeScript (`schema`: the
 * module build/<preset>/examples/ledger/js/ledger.js). `builtins`: whether
 * the SDK has keepstate.put and keepstate.delete to test.
 */
export function makeGenerator(schema, { builtins = true } = {}) {
  const { OpenAccount, Transfer, TransferBatch, TransferOp, AccountRef } = schema;
  const finish = (builder, offset) => {
    builder.finish(offset);
    return builder.asUint8Array().slice();
  };
  const accountKey = (id) => `acct/${String(id).padStart(10, '0')}`;

  /** Sequence `seed`: { seed, comparePages, mutations: [{ name, args, commit }] }. */
  function sequence(seed) {
    const r = prng(seed);
    // Per sequence: how many accounts the ids range over (few: dense
    // transfers among existing accounts; many: a tree of many pages), how
    // often to commit, and which mutations dominate.
    const universe = r.weighted([[5, 16], [4, 64], [2, 3000]]);
    const commitRate = r.pick([0, 0.02, 0.1, 0.4]);
    const length = r.int(5, 200);
    const keys = []; // keys put so far (deletes and overwrites pick among them)
    // Accounts asked for so far (opened unless the call failed): most
    // transfers name them, so most apply and the state keeps moving.
    const opened = [];
    let nextId = 0;

    const id = () =>
      r.weighted([
        [85, () => (opened.length > 0 ? r.pick(opened) : r.int(0, universe - 1))],
        [12, () => r.int(0, universe - 1)],
        [3, () => r.pick([0xffffffff, 0xfffffffe, 2 ** 31])],
      ])();
    const amount = () =>
      r.weighted([
        [80, () => BigInt(r.int(1, 300))],
        [5, () => 0n],
        [4, () => -BigInt(r.int(1, 1000))],
        [8, () => BigInt(r.int(1000, 1_000_000_000))],
        [3, () => r.pick([2n ** 62n, 2n ** 63n - 1n, -(2n ** 63n)])],
      ])();

    const openAccount = () => {
      const b = new flatbuffers.Builder(64);
      const count = r.weighted([[80, () => r.int(1, Math.min(universe, 40))], [8, () => r.int(40, 600)], [4, () => 0]])();
      const balance = r.chance(0.05) ? -1n : BigInt(r.int(0, 5000));
      // Mostly the next fresh ids; else anywhere (the account may exist), or past the end.
      const first = r.weighted([[75, () => nextId], [22, () => r.int(0, universe - 1)], [3, () => 0xffffffff - r.int(0, 5)]])();
      if (first === nextId) nextId += count;
      for (let i = 0; i < Math.min(count, 64); ++i) opened.push(first + i);
      return finish(b, OpenAccount.createOpenAccount(b, first, count, balance));
    };
    const transfer = () => {
      const b = new flatbuffers.Builder(64);
      const from = id();
      const to = r.chance(0.05) ? from : id();
      return finish(b, Transfer.createTransfer(b, from, to, amount()));
    };
    const transferBatch = () => {
      const b = new flatbuffers.Builder(256);
      const n = r.weighted([[70, () => r.int(0, 20)], [25, () => r.int(20, 300)], [5, () => r.int(300, 3000)]])();
      const ops = Array.from({ length: n }, () => {
        const from = id();
        return [from, r.chance(0.03) ? from : id(), amount()];
      });
      TransferBatch.startOpsVector(b, n);
      for (let i = n - 1; i >= 0; --i) TransferOp.createTransferOp(b, ...ops[i]);
      return finish(b, TransferBatch.createTransferBatch(b, b.endVector()));
    };
    const accountRef = () => {
      const b = new flatbuffers.Builder(32);
      return finish(b, AccountRef.createAccountRef(b, id()));
    };

    const newKey = () => {
      const n = r.weighted([[85, () => r.int(1, 24)], [10, () => r.int(25, 200)], [5, () => r.int(200, 900)]])();
      let k = 'kv/';
      for (let i = 0; i < n; ++i) k += r.pick(KEY_CHARS);
      return k;
    };
    const putKey = () =>
      r.weighted([
        [55, () => newKey()],
        [25, () => (keys.length > 0 ? r.pick(keys) : newKey())],
        [1.5, () => accountKey(r.int(0, universe - 1))], // the ledger then finds a record that is not an Account
        [0.5, () => 'ledger'],
        [2, () => ''],
        [2, () => 'k'.repeat(r.int(1000, 3000))], // past the key size limit
      ])();
    const value = () => r.bytes(r.weighted([[70, () => r.int(0, 64)], [25, () => r.int(65, 2000)], [5, () => r.int(2001, 40000)]])());
    const put = () => {
      const k = putKey();
      const key = utf8.encode(k);
      if (key.length > 0 && key.length < 1000) keys.push(k);
      const v = value();
      const args = new Uint8Array(4 + key.length + v.length);
      new DataView(args.buffer).setUint32(0, key.length, true);
      args.set(key, 4);
      args.set(v, 4 + key.length);
      if (r.chance(0.02)) {
        // Malformed: shorter than its length field, or a length past the end.
        if (r.chance(0.5)) return args.slice(0, r.int(0, 3));
        new DataView(args.buffer).setUint32(0, args.length, true);
      }
      return args;
    };
    const del = () =>
      utf8.encode(
        r.weighted([
          [60, () => (keys.length > 0 ? r.pick(keys) : newKey())],
          [20, () => newKey()],
          [4, () => accountKey(r.int(0, universe - 1))],
          [5, () => ''],
        ])(),
      );

    const kinds = [
      [12, 'open_account', openAccount],
      [25, 'transfer', transfer],
      [12, 'transfer_batch', transferBatch],
      [3, 'balance', accountRef],
      [1, 'audit', () => new Uint8Array(0)],
      // Bytes that are not the mutator's FlatBuffers table.
      [2, null, () => r.bytes(r.int(0, 24))],
    ];
    if (builtins) kinds.push([25, 'keepstate.put', put], [10, 'keepstate.delete', del]);
    const named = kinds.filter(([, name]) => name !== null);

    const mutations = [];
    for (let i = 0; i < length; ++i) {
      let [, name, args] = r.weighted(kinds.map((k) => [k[0], k]));
      if (name === null) name = r.pick(named)[1];
      mutations.push({ name, args: args(), commit: r.chance(commitRate) });
    }
    return { seed, comparePages: seed % PAGE_EVERY === 0, mutations };
  }

  return { sequence };
}
