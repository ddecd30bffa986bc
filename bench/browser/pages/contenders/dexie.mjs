// Dexie 4 as its docs recommend for throughput: bulk operations
// (bulkGet/bulkPut) inside one rw transaction, primary-key lookups, and
// chromeTransactionDurability 'strict' (the same durability as keepstate's
// commits; Chromium's default is 'relaxed').
import Dexie from 'dexie';
import { INITIAL_BALANCE, applyTransfer, changedIds, now, recordBytes, transfers } from '../common.mjs';

let db;
function open(name) {
  db = new Dexie(name, { chromeTransactionDurability: 'strict' });
  db.version(1).stores({ records: 'id', accounts: 'id' });
  return db.open();
}

// --- commit latency ---------------------------------------------------------
const record = (id, gen) => ({ id, data: recordBytes(id, gen).slice() });

export async function commitSetup({ name, records }) {
  await open(name);
  const t0 = now();
  for (let first = 0; first < records; first += 16384) {
    const rows = [];
    for (let id = first; id < Math.min(records, first + 16384); ++id) rows.push(record(id, 0));
    await db.records.bulkPut(rows);
  }
  return { ms: now() - t0 };
}

/** bulkPut of the changed records (objects built untimed), one transaction. */
export async function commitRun({ records, count, seed, gen }) {
  const rows = changedIds(records, count, seed).map((id) => record(id, gen));
  const t0 = now();
  await db.records.bulkPut(rows);
  return { ms: now() - t0 };
}

// --- transactions -------------------------------------------------------------

export async function ledgerSetup({ name, accounts }) {
  await open(name);
  const t0 = now();
  for (let first = 0; first < accounts; first += 100_000) {
    const rows = [];
    for (let id = first; id < Math.min(accounts, first + 100_000); ++id) rows.push({ id, balance: INITIAL_BALANCE, transfers: 0 });
    await db.accounts.bulkAdd(rows);
  }
  return { ms: now() - t0 };
}

/** Batches of `batch` transfers, each one rw transaction: bulkGet the accounts, apply in order, bulkPut the changed ones. */
export async function transfersJs({ n, accounts, seed, batch }) {
  const t = transfers(n, accounts, seed);
  let applied = 0;
  const t0 = now();
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    await db.transaction('rw', db.accounts, async () => {
      const ids = new Set();
      for (let i = start; i < end; ++i) ids.add(t.from[i]).add(t.to[i]);
      const list = [...ids];
      const rows = await db.accounts.bulkGet(list);
      const byId = new Map(list.map((id, i) => [id, rows[i]]));
      for (let i = start; i < end; ++i) {
        if (applyTransfer(byId.get(t.from[i]), byId.get(t.to[i]), t.amount[i])) ++applied;
      }
      await db.accounts.bulkPut(rows);
    });
  }
  const ms = now() - t0;
  return { ms, perSecond: n / (ms / 1000), applied };
}
