// PGlite (@electric-sql/pglite): Postgres in wasm on the page's main thread,
// stored with idb:// (Emscripten's IDBFS: the data directory lives in
// memory and is synced to IndexedDB). relaxedDurability: false (its
// default): query() resolves only after that sync has finished. The sync's
// IndexedDB transaction asks for no durability, so it gets the browser's
// default ('relaxed' in Chromium since 121: it may complete before the disk
// has the data). transaction() does not sync at its COMMIT (PGlite skips the
// sync inside a transaction and not after it): the load awaits
// pg.syncToFs() after it, as an app wanting it durable must.
import { PGlite } from '@electric-sql/pglite';
import { checkOpened, now, peerRecord, prefixEnd, recordKey, timeRewrites, timeScans } from '../common.mjs';

// Rows per INSERT of the load (2 parameters each; Postgres takes up to 65,535 per statement).
const BATCH = 1000;
let pg;

async function open(name) {
  await pg?.close();
  pg = await PGlite.create(`idb://${name}`, { relaxedDurability: false });
}

/** A new database `name` (created untimed: initdb); times one transaction inserting `records` records, then the sync. */
export async function peersLoad({ name, records }) {
  await open(name);
  await pg.exec('CREATE TABLE IF NOT EXISTS kv (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL)');
  const t0 = now();
  await pg.transaction(async (tx) => {
    for (let first = 0; first < records; first += BATCH) {
      const n = Math.min(BATCH, records - first);
      const params = [];
      for (let id = first; id < first + n; ++id) params.push(recordKey(id), peerRecord(id, 0));
      const values = Array.from({ length: n }, (_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
      await tx.query(`INSERT INTO kv (k, v) VALUES ${values} ON CONFLICT (k) DO UPDATE SET v = excluded.v`, params);
    }
  });
  await pg.syncToFs();
  return { ms: now() - t0, version: (await pg.query('SELECT version()')).rows[0].version };
}

export const peersRewrite = (args) =>
  timeRewrites(args, (id, gen) => pg.query('UPDATE kv SET v = $2 WHERE k = $1', [recordKey(id), peerRecord(id, gen)]));

const scan = async (prefix) =>
  (await pg.query('SELECT k, v FROM kv WHERE k >= $1 AND k < $2 ORDER BY k', [prefix, prefixEnd(prefix)], { rowMode: 'array' })).rows;

export const peersScan = (args) => timeScans(args, scan);

/** After a browser relaunch: times PGlite.create (wasm, the data directory read from IndexedDB, Postgres started) until `key` is read (firstMs), then until every record is (allMs). */
export async function peersOpen({ name, records, key }) {
  const t0 = now();
  pg = await PGlite.create(`idb://${name}`, { relaxedDurability: false });
  const first = (await pg.query('SELECT v FROM kv WHERE k = $1', [key], { rowMode: 'array' })).rows[0]?.[0];
  const tFirst = now();
  const all = (await pg.query('SELECT k, v FROM kv ORDER BY k', [], { rowMode: 'array' })).rows;
  const tAll = now();
  checkOpened(key, first, all, records);
  return { firstMs: tFirst - t0, allMs: tAll - t0 };
}
