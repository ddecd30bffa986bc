// A plain JS Map of account objects: the in-memory floor of the
// transactions workload (no persistence, no atomicity beyond "JS is single
// threaded").
import { INITIAL_BALANCE, applyTransfer, now, timePutGet, transfers } from '../common.mjs';

let accountsById;

export async function ledgerSetup({ accounts }) {
  const t0 = now();
  accountsById = new Map();
  for (let id = 0; id < accounts; ++id) accountsById.set(id, { id, balance: INITIAL_BALANCE, transfers: 0 });
  return { ms: now() - t0 };
}

export async function transfersJs({ n, accounts, seed }) {
  const t = transfers(n, accounts, seed);
  let applied = 0;
  const t0 = now();
  for (let i = 0; i < n; ++i) {
    if (applyTransfer(accountsById.get(t.from[i]), accountsById.get(t.to[i]), t.amount[i])) ++applied;
  }
  const ms = now() - t0;
  return { ms, perSecond: n / (ms / 1000), applied };
}

// --- put/get from a user's seat (run.mjs "API"): the Map keeps a copy of each value,
// as a store must (the caller may reuse its array); get returns the kept array itself.

export async function apiRun(args) {
  const map = new Map();
  return timePutGet(args, (key, value) => map.set(key, value.slice()), (key) => map.get(key));
}
