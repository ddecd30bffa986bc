// The crash and corruption checks over the C++ ledger (examples/ledger:
// business logic compiled into its own wasm module, run by store.call()).
// Transfer number n is transferSpec(seed, n) from ledger.js; the C++ side
// applies it if the payer has the funds and rejects it otherwise, and counts
// both in the Ledger record in the same transaction, so after
// `transfers + rejected` operations the balances are fully determined: replay()
// recomputes them in JS and compares every account record (read with the
// flatc-generated TS), on top of the C++ audit of the sum.
import { transferSpec } from './ledger.js';

let client; // examples/ledger/client.mjs, as built

export async function load(url) {
  client = await import(url);
  return Object.keys(client).sort();
}

export const moduleSource = () => client.ledgerModule;

const ledgers = new WeakMap();
function ledgerOf(store) {
  let l = ledgers.get(store);
  if (l === undefined) ledgers.set(store, (l = new client.Ledger(store)));
  return l;
}

export async function create(store, accounts, initial, seed) {
  const totals = await ledgerOf(store).openAccounts(0, accounts, initial);
  store.putJSON('meta:ledger', { accounts, initial, seed });
  return totals;
}

/** Transfer operations processed so far (applied + rejected). */
export function operations(store) {
  const t = ledgerOf(store).totals();
  return t.transfers + t.rejected;
}

/** Applies operations n+1 .. n+count in one transfer_batch call, n = operations so far. */
export async function transfers(store, count) {
  const { accounts, seed } = store.getJSON('meta:ledger');
  const ledger = ledgerOf(store);
  const t = ledger.totals();
  const done = t.transfers + t.rejected;
  const from = [];
  const to = [];
  const amount = [];
  for (let n = done + 1; n <= done + count; ++n) {
    const s = transferSpec(seed, n, accounts);
    from.push(s.from);
    to.push(s.to);
    amount.push(s.amount);
  }
  return ledger.transferBatch(from, to, amount);
}

/** One transfer (the `transfer` mutator), whatever the seed would pick. */
export const transfer = (store, from, to, amount) => ledgerOf(store).transfer(from, to, amount);

export async function audit(store) {
  const ledger = ledgerOf(store);
  return { ...(await ledger.audit()), ...ledger.totals() };
}

export function replay(store) {
  const { accounts, initial, seed } = store.getJSON('meta:ledger');
  const ledger = ledgerOf(store);
  const t = ledger.totals();
  const ops = t.transfers + t.rejected;
  const balance = new Array(accounts).fill(initial);
  let applied = 0;
  for (let n = 1; n <= ops; ++n) {
    const s = transferSpec(seed, n, accounts);
    if (balance[s.from] < s.amount) continue;
    balance[s.from] -= s.amount;
    balance[s.to] += s.amount;
    ++applied;
  }
  const mismatches = [];
  for (let id = 0; id < accounts; ++id) {
    const stored = ledger.account(id)?.balance;
    if (stored !== balance[id]) mismatches.push({ id, stored, expected: balance[id] });
  }
  const ok = mismatches.length === 0 && applied === t.transfers;
  return { ok, ops, applied, transfers: t.transfers, mismatchCount: mismatches.length, mismatches: mismatches.slice(0, 5) };
}
