// The Worker of the sqlite-sahpool and sqlite-opfs contenders (sqlite-wasm.mjs):
// SQLite's own wasm build (@sqlite.org/sqlite-wasm) through its oo1 API, as
// its docs show it, with PRAGMA synchronous=FULL. Messages { id, op, args }
// are answered { id, result } or { id, error }; rows come back as
// [key, Uint8Array] pairs, their buffers transferred.
import { peerRecord, prefixEnd, recordKey } from '../common.mjs';

let init, sqlite3, pool, db;
const statements = new Map();
const prepared = (sql) => {
  if (!statements.has(sql)) statements.set(sql, db.prepare(sql));
  return statements.get(sql);
};
const rows = (sql, bind) => db.exec({ sql, bind, rowMode: 'array', returnValue: 'resultRows' });

const ops = {
  /** Loads the library's JS (untimed: keepstate's JS is loaded before its clock starts too). */
  async init({ sqliteUrl }) {
    ({ default: init } = await import(sqliteUrl));
  },
  /** Instantiates the module, installs the VFS and opens (creating) database `name`. */
  async open({ vfs, name }) {
    sqlite3 ??= await init();
    for (const s of statements.values()) s.finalize();
    statements.clear();
    db?.close();
    if (vfs === 'opfs-sahpool') {
      pool ??= await sqlite3.installOpfsSAHPoolVfs({ name: 'peers-sahpool' });
      db = new pool.OpfsSAHPoolDb(`/${name}.db`);
    } else if (vfs === 'opfs') {
      if (sqlite3.oo1.OpfsDb === undefined) {
        throw new Error(`no opfs VFS here (crossOriginIsolated: ${self.crossOriginIsolated}, SharedArrayBuffer: ${typeof SharedArrayBuffer})`);
      }
      db = new sqlite3.oo1.OpfsDb(`/${name}.db`, 'c');
    } else {
      throw new Error(`unknown VFS ${vfs}`);
    }
    db.exec('PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)');
    return { version: sqlite3.version.libVersion };
  },
  /** One transaction inserting `records` records. */
  load({ records }) {
    db.exec('BEGIN');
    const insert = prepared('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    for (let id = 0; id < records; ++id) insert.bind([recordKey(id), peerRecord(id, 0)]).stepReset();
    db.exec('COMMIT');
  },
  /** One statement (its own transaction): record `id` at generation `gen`. */
  rewrite({ id, gen }) {
    prepared('UPDATE kv SET v = ? WHERE k = ?').bind([peerRecord(id, gen), recordKey(id)]).stepReset();
  },
  get({ key }) {
    return rows('SELECT v FROM kv WHERE k = ?', [key])[0]?.[0];
  },
  scan({ prefix }) {
    return rows('SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k', [prefix, prefixEnd(prefix)]);
  },
  all() {
    return rows('SELECT k, v FROM kv ORDER BY k');
  },
};

/** The buffers of the bytes in `result` (a Uint8Array, or rows of them), to transfer. */
function buffers(result) {
  if (result instanceof Uint8Array) return [result.buffer];
  if (!Array.isArray(result)) return [];
  return [...new Set(result.flatMap((row) => row.filter((x) => x instanceof Uint8Array).map((x) => x.buffer)))];
}

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    const result = await ops[op](args ?? {});
    self.postMessage({ id, result }, buffers(result));
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e) });
  }
};
