// The ledger the crash and corruption tests check, in plain JS over the
// package: accounts are keys `acct:NNNNNN` holding a balance (decimal text),
// `meta:ledger` holds {accounts, total}, `meta:seq` counts applied transfers.
// Each transfer is one store.transaction(), so a committed version holds
// either all of a transfer or none of it.
//
// Invariants the audit checks: the balances sum to `total`, there are exactly
// `accounts` of them, none is negative. Transfer number k is a pure function
// of (seed, k) and the balances before it, so the state after `seq` transfers
// is fully determined: replay() recomputes it and a restored state that is
// not exactly some prefix of the transfers (a torn commit) is caught.

export const ACCOUNT_PREFIX = 'acct:';

export function accountKey(i) {
  return `${ACCOUNT_PREFIX}${String(i).padStart(6, '0')}`;
}

/** 32-bit mix of (seed, k) (splitmix-style), the randomness of transfer k. */
function mix(seed, k) {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Transfer k: from, to (different accounts) and the amount asked for. */
export function transferSpec(seed, k, accounts) {
  const a = mix(seed, k);
  const b = mix(seed ^ 0x5bd1e995, k);
  const from = a % accounts;
  const to = (from + 1 + (b % (accounts - 1))) % accounts;
  return { from, to, amount: 1 + ((a >>> 20) % 100) };
}

/** Applies transfer k to balances read and written through `rw` (a store or a tx). */
function applyTransfer(rw, seed, k, accounts) {
  const { from, to, amount } = transferSpec(seed, k, accounts);
  const fromBalance = Number(rw.getText(accountKey(from)));
  const toBalance = Number(rw.getText(accountKey(to)));
  const moved = Math.min(amount, fromBalance); // never overdraw
  rw.put(accountKey(from), String(fromBalance - moved));
  rw.put(accountKey(to), String(toBalance + moved));
}

/** Creates `accounts` accounts of `initial` each, in one transaction. */
export function createLedger(store, accounts, initial, seed) {
  store.transaction((tx) => {
    for (let i = 0; i < accounts; ++i) tx.put(accountKey(i), String(initial));
    tx.putJSON('meta:ledger', { accounts, initial, total: accounts * initial, seed });
    tx.putJSON('meta:seq', 0);
  });
}

/** Runs `count` transfers, each its own atomic transaction; returns the new seq. */
export function runTransfers(store, count) {
  const { accounts, seed } = store.getJSON('meta:ledger');
  let seq = store.getJSON('meta:seq');
  for (let i = 0; i < count; ++i) {
    store.transaction((tx) => {
      const k = tx.getJSON('meta:seq') + 1;
      applyTransfer(tx, seed, k, accounts);
      tx.putJSON('meta:seq', k);
    });
    ++seq;
  }
  return seq;
}

/** The sum invariant. */
export function audit(store) {
  const ledger = store.getJSON('meta:ledger');
  if (ledger === undefined) return { ok: false, reason: 'no ledger' };
  let sum = 0;
  let count = 0;
  let negative = 0;
  for (const [, value] of store.scan({ prefix: ACCOUNT_PREFIX })) {
    const balance = Number(new TextDecoder().decode(value));
    sum += balance;
    ++count;
    if (!(balance >= 0)) ++negative;
  }
  const ok = sum === ledger.total && count === ledger.accounts && negative === 0;
  return { ok, sum, total: ledger.total, count, accounts: ledger.accounts, negative, seq: store.getJSON('meta:seq') };
}

/** Whether the balances are exactly those after transfers 1..seq from the initial state. */
export function replayMatches(store) {
  const { accounts, initial, seed } = store.getJSON('meta:ledger');
  const seq = store.getJSON('meta:seq');
  const balances = new Map();
  for (let i = 0; i < accounts; ++i) balances.set(accountKey(i), String(initial));
  const model = {
    getText: (key) => balances.get(key),
    put: (key, value) => void balances.set(key, value),
  };
  for (let k = 1; k <= seq; ++k) applyTransfer(model, seed, k, accounts);
  const mismatches = [];
  for (const [key, value] of store.scan({ prefix: ACCOUNT_PREFIX })) {
    const text = new TextDecoder().decode(value);
    if (balances.get(key) !== text) mismatches.push({ key, stored: text, expected: balances.get(key) });
  }
  return { ok: mismatches.length === 0, seq, mismatches: mismatches.slice(0, 5), mismatchCount: mismatches.length };
}
