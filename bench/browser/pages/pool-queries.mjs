// The JS queries of the pool benchmark (pool.mjs): each (store, args) runs
// in a read replica's Worker against a ReadOnlyStore.
import { decodeAccount } from '/test-support/pool-ledger.mjs';

/** The cheapest query: the version the replica read (cold start, follow). */
export function version(store) {
  return store.version;
}

/** A report: the `top` richest of the first `accounts` accounts, read and decoded in JS. */
export function richest(store, { accounts, top }) {
  const best = [];
  for (const [, value] of store.scan({ prefix: 'acct/', limit: accounts })) {
    const a = decodeAccount(value);
    if (best.length < top || a.balance > best[best.length - 1].balance) {
      best.push(a);
      best.sort((x, y) => y.balance - x.balance);
      if (best.length > top) best.pop();
    }
  }
  return best;
}
