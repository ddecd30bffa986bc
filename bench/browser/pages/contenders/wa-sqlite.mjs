// SQLite in wasm (@journeyapps/wa-sqlite) on IDBBatchAtomicVFS, with the
// settings its docs recommend: the JSPI build where the browser has it (else
// Asyncify), a page cache large enough to hold the whole transaction (so the
// VFS can use batch-atomic writes and needs no journal file),
// synchronous=full (the VFS's 'strict' IndexedDB durability), INTEGER
// PRIMARY KEY rows, prepared statements reused across a transaction.
import * as SQLite from '/node_modules/@journeyapps/wa-sqlite/src/sqlite-api.js';
import { IDBBatchAtomicVFS } from '/node_modules/@journeyapps/wa-sqlite/src/examples/IDBBatchAtomicVFS.js';
import { INITIAL_BALANCE, changedIds, now, transfers } from '../common.mjs';

const build = typeof WebAssembly.Suspending === 'function' ? 'wa-sqlite-jspi.mjs' : 'wa-sqlite-async.mjs';
let sqlite3, db;

async function open(name, cacheKiB, pageSize = 4096) {
  const { default: factory } = await import(`/node_modules/@journeyapps/wa-sqlite/dist/${build}`);
  const module = await factory();
  sqlite3 = SQLite.Factory(module);
  const vfs = await IDBBatchAtomicVFS.create(name, module);
  sqlite3.vfs_register(vfs, true);
  db = await sqlite3.open_v2(`${name}.db`);
  // page_size only takes effect on a new database (IDBBatchAtomicVFS refuses to change it later).
  await sqlite3.exec(db, `PRAGMA page_size=${pageSize}; PRAGMA cache_size=-${Math.ceil(cacheKiB)}; PRAGMA synchronous=full; PRAGMA temp_store=memory;`);
}

async function prepare(sql) {
  for await (const stmt of sqlite3.statements(db, sql, { unscoped: true })) return stmt;
  throw new Error(`no statement in ${sql}`);
}

// --- commit latency ---------------------------------------------------------

export async function commitSetup({ name, records, pageSize }) {
  await open(name, records * 1.4 + 16384, pageSize);
  const t0 = now();
  await sqlite3.exec(db, `CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
    BEGIN;
    WITH RECURSIVE c(x) AS (VALUES(0) UNION ALL SELECT x + 1 FROM c WHERE x < ${records - 1})
      INSERT OR REPLACE INTO kv SELECT x, randomblob(1024) FROM c;
    COMMIT;`);
  return { ms: now() - t0, build, pageSize };
}

/** UPDATE the changed rows (untimed, in the page cache), then time COMMIT. */
export async function commitRun({ records, count, seed }) {
  const ids = JSON.stringify(changedIds(records, count, seed));
  await sqlite3.exec(db, 'BEGIN');
  const stmt = await prepare('UPDATE kv SET v = randomblob(1024) WHERE id IN (SELECT value FROM json_each(?))');
  sqlite3.bind_collection(stmt, [ids]);
  await sqlite3.step(stmt);
  await sqlite3.finalize(stmt);
  const t0 = now();
  await sqlite3.exec(db, 'COMMIT');
  return { ms: now() - t0, changes: sqlite3.changes(db) };
}

// --- transactions -------------------------------------------------------------

export async function ledgerSetup({ name, accounts, pageSize }) {
  await open(name, 262144, pageSize);
  const t0 = now();
  await sqlite3.exec(db, `CREATE TABLE IF NOT EXISTS accounts
      (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, transfers INTEGER NOT NULL);
    BEGIN;
    WITH RECURSIVE c(x) AS (VALUES(0) UNION ALL SELECT x + 1 FROM c WHERE x < ${accounts - 1})
      INSERT OR REPLACE INTO accounts SELECT x, ${INITIAL_BALANCE}, 0 FROM c;
    COMMIT;`);
  return { ms: now() - t0, build };
}

/**
 * Per transfer: SELECT both balances, two UPDATEs, all prepared once; `batch`
 * transfers per BEGIN..COMMIT. The clock covers the statements (the
 * in-memory part, as for keepstate), not the COMMIT that writes to IndexedDB.
 */
export async function transfersJs({ n, accounts, seed, batch }) {
  const t = transfers(n, accounts, seed);
  const select = await prepare('SELECT balance FROM accounts WHERE id = ?');
  const update = await prepare('UPDATE accounts SET balance = balance + ?, transfers = transfers + 1 WHERE id = ?');
  const balanceOf = async (id) => {
    sqlite3.bind_int(select, 1, id);
    await sqlite3.step(select);
    const b = sqlite3.column_int(select, 0);
    sqlite3.reset(select);
    return b;
  };
  const add = async (id, amount) => {
    sqlite3.bind_int(update, 1, amount);
    sqlite3.bind_int(update, 2, id);
    await sqlite3.step(update);
    sqlite3.reset(update);
  };
  let applied = 0, ms = 0;
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    await sqlite3.exec(db, 'BEGIN');
    const t0 = now();
    for (let i = start; i < end; ++i) {
      const from = t.from[i], to = t.to[i], amount = t.amount[i];
      if (from === to) continue;
      const fb = await balanceOf(from);
      await balanceOf(to);
      if (fb < amount) continue;
      await add(from, -amount);
      await add(to, amount);
      ++applied;
    }
    ms += now() - t0;
    await sqlite3.exec(db, 'COMMIT');
  }
  await sqlite3.finalize(select);
  await sqlite3.finalize(update);
  return { ms, perSecond: n / (ms / 1000), applied };
}
