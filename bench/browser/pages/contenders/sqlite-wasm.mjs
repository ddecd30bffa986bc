// SQLite WASM (@sqlite.org/sqlite-wasm) in a Worker (sqlite-wasm.worker.mjs),
// the way its docs use OPFS: imported as `sqlite-wasm.mjs?vfs=<name>` by
// sqlite-sahpool.mjs (the opfs-sahpool VFS: FileSystemSyncAccessHandles,
// no special headers) and sqlite-opfs.mjs (the opfs VFS: a second Worker
// and SharedArrayBuffer, so its page is served cross-origin isolated, at
// /bench-coi/). Every figure is taken in this page, on the main thread, as
// the app waits for the worker's answer. A commit is durable once COMMIT
// returns with synchronous=FULL: SQLite has flushed the database file (and
// its journal) through the VFS, i.e. FileSystemSyncAccessHandle.flush().
import { checkOpened, now, timeRewrites, timeScans } from '../common.mjs';

const VFS = new URL(import.meta.url).searchParams.get('vfs');
// The opfs VFS starts a Worker of its own next to the library: it must be cross-origin isolated too.
const SQLITE_URL = VFS === 'opfs' ? '/sqlite-coi/index.mjs' : '/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';

let worker;
let seq = 0;
const pending = new Map();

function call(op, args) {
  return new Promise((resolve, reject) => {
    const id = ++seq;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
}

/** The worker with the library's JS loaded (untimed). */
async function start() {
  if (worker) return;
  worker = new Worker(new URL('./sqlite-wasm.worker.mjs', import.meta.url), { type: 'module' });
  worker.onmessage = ({ data: { id, result, error } }) => {
    const p = pending.get(id);
    pending.delete(id);
    if (error === undefined) p.resolve(result);
    else p.reject(new Error(error));
  };
  worker.onerror = (e) => {
    for (const p of pending.values()) p.reject(new Error(`worker: ${e.message ?? 'failed to load'}`));
    pending.clear();
  };
  await call('init', { sqliteUrl: SQLITE_URL });
}

/** A new database `name` (opened untimed); times one transaction inserting `records` records. */
export async function peersLoad({ name, records }) {
  await start();
  const { version } = await call('open', { vfs: VFS, name });
  const t0 = now();
  await call('load', { records });
  return { ms: now() - t0, version };
}

export const peersRewrite = (args) => timeRewrites(args, (id, gen) => call('rewrite', { id, gen }));

export const peersScan = (args) => timeScans(args, (prefix) => call('scan', { prefix }));

/** After a browser relaunch: times instantiating SQLite and opening the database until `key` is read (firstMs), then until every record is (allMs). */
export async function peersOpen({ name, records, key }) {
  await start();
  const t0 = now();
  await call('open', { vfs: VFS, name });
  const first = await call('get', { key });
  const tFirst = now();
  const all = await call('all');
  const tAll = now();
  checkOpened(key, first, all, records);
  return { firstMs: tFirst - t0, allMs: tAll - t0 };
}
