// JS queries for pool.test.mjs: each (store, args) => result runs in a read
// replica against a ReadOnlyStore.
import { accountKeyOf, decodeAccount } from './pool-ledger.mjs';

/** The sum of every account's balance and their count, read key by key (scan). */
export function sumBalances(store) {
  let total = 0;
  let accounts = 0;
  for (const [, value] of store.scan({ prefix: 'acct/' })) {
    total += decodeAccount(value).balance;
    ++accounts;
  }
  return { total, accounts, version: store.version };
}

/** The balances of the accounts `ids`. */
export function balances(store, ids) {
  return ids.map((id) => {
    const v = store.get(accountKeyOf(id));
    return v === undefined ? null : decodeAccount(v).balance;
  });
}

export function read(store, key) {
  return { text: store.getText(key), has: store.has(key), json: key.startsWith('json:') ? store.getJSON(key) : null };
}

/** Busy for `ms` (a slow query), then the version it read. */
export function slow(store, ms) {
  const end = performance.now() + ms;
  while (performance.now() < end);
  return store.version;
}

/** Tries to write: a ReadOnlyStore has no put (a TypeError), and nothing underneath writes. */
export function tryWrite(store) {
  store.put('written-by-a-query', 'x');
  return 'wrote';
}

export function returnsPromise() {
  return Promise.resolve(1);
}

export const notAFunction = 42;
