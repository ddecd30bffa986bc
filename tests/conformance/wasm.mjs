// The wasm side of the conformance suite: runs sequences through the real
// package (js-bindings/dist) and the ledger module as a browser runs them,
// each on a fresh store with memory storage, committing where the sequence
// says, and hashes what happened (hash.mjs) as the native runner does.
import { Fnv64, foldOutcome, stateHash } from './hash.mjs';

const utf8 = new TextEncoder();

/**
 * A runner over the package `keepstate` (the module js-bindings/dist/node.js)
 * and the ledger's module source (`ledgerModule` of client.mjs).
 */
export function makeWasmRunner(keepstate, ledgerModule) {
  const { openStore, deleteStore, KeepstateError } = keepstate;
  let stores = 0;

  // One mutation through store.call: { code, bytes } as hash.mjs folds it.
  async function call(store, m) {
    try {
      return { code: 'ok', bytes: await store.call(m.name, m.args) };
    } catch (e) {
      if (!(e instanceof KeepstateError)) throw e;
      return { code: e.code, bytes: utf8.encode(e.message) };
    }
  }

  // The store's entries as bytes, in key order (keys are UTF-8 strings in JS).
  const entries = (store) => store.scan().map(([k, v]) => [utf8.encode(k), v]);

  /**
   * Runs `sequence` (its first `stop` mutations; all by default) on a fresh store and
   * calls `inspect(store, index, outcome)` after each mutation if given. Resolves with
   * { outcomes, state, entries, pages } (pages: the exported snapshot file if the
   * sequence compares pages).
   */
  async function run(sequence, { stop = sequence.mutations.length, inspect } = {}) {
    const name = `conformance-${process.pid}-${++stores}`;
    const store = await openStore(name, { storage: 'memory', module: ledgerModule, autosave: false });
    try {
      const outcomes = new Fnv64();
      for (let i = 0; i < stop; ++i) {
        const m = sequence.mutations[i];
        const outcome = await call(store, m);
        foldOutcome(outcomes, outcome);
        if (m.commit && store.dirty) await store.commit();
        if (inspect) inspect(store, i, outcome);
      }
      let pages = null;
      if (sequence.comparePages && stop === sequence.mutations.length) {
        // An export is of the committed state: commit what is left first (the native side does too).
        if (store.dirty) await store.commit();
        pages = new Uint8Array(await (await store.export()).arrayBuffer());
      }
      const all = entries(store);
      return { outcomes: outcomes.hex(), state: stateHash(all), entries: all.length, pages };
    } finally {
      await store.close();
      await deleteStore(name, { storage: 'memory' });
    }
  }

  /** Per mutation: { code, outcome (hash of that outcome alone), state (hash after it) }. */
  async function trace(sequence) {
    const steps = [];
    await run(sequence, {
      inspect: (store, i, outcome) =>
        steps.push({ code: outcome.code, outcome: foldOutcome(new Fnv64(), outcome).hex(), state: stateHash(entries(store)) }),
    });
    return steps;
  }

  /** The entries after the first `stop` mutations. */
  async function dump(sequence, stop) {
    let out = [];
    await run(sequence, { stop, inspect: (store, i) => i === stop - 1 && (out = entries(store)) });
    return out;
  }

  return { run, trace, dump };
}
