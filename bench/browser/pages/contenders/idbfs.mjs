// Emscripten's IDBFS (bench/browser/idbfs/idbfs_state.c, -lidbfs.js): the
// state is one file in MEMFS mounted on IDBFS; FS.syncfs(false) persists it
// (IDBFS stores every file changed since the last sync as one IndexedDB
// record), FS.syncfs(true) loads it back.
//
// IDBFS opens its transactions without a durability option, which Chromium
// (since 121) treats as 'relaxed'. Every contender here commits with
// 'strict', so this page makes 'strict' the default for transactions that
// do not ask for one — that is what a user who needs the data on disk would
// have to do.
import createIdbfsModule from '/bench-build/bench_browser_idbfs.js';
import { changedIds, now, RECORD_BYTES } from '../common.mjs';

const transaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (stores, mode, options) {
  return transaction.call(this, stores, mode, options ?? { durability: 'strict' });
};

const FILE = '/state/state.bin';
let m;

async function mount() {
  m = await createIdbfsModule();
  m.FS.mkdir('/state');
  m.FS.mount(m.FS.filesystems.IDBFS, {}, '/state');
}

const syncfs = (populate) =>
  new Promise((resolve, reject) => m.FS.syncfs(populate, (err) => (err ? reject(err) : resolve())));

function check(rc, what) {
  if (rc !== 0) throw new Error(`${what} failed`);
}

export async function commitSetup({ records }) {
  await mount();
  await syncfs(true);
  check(m.ccall('ks_idbfs_fill', 'number', ['string', 'number', 'number'], [FILE, records * RECORD_BYTES, 0]), 'fill');
  const t0 = now();
  await syncfs(false);
  return { ms: now() - t0 };
}

/** Rewrites the changed 1 KiB slots of the file through stdio (untimed), then times FS.syncfs(false). */
export async function commitRun({ records, count, seed, gen }) {
  if (count >= records) {
    check(m.ccall('ks_idbfs_touch', 'number', ['string', 'number', 'number', 'number'], [FILE, 0, records * RECORD_BYTES, gen]), 'touch');
  } else {
    for (const id of changedIds(records, count, seed)) {
      check(m.ccall('ks_idbfs_touch', 'number', ['string', 'number', 'number', 'number'], [FILE, id * RECORD_BYTES, RECORD_BYTES, gen]), 'touch');
    }
  }
  const t0 = now();
  await syncfs(false);
  return { ms: now() - t0 };
}

/** After a page load: instantiate, mount, FS.syncfs(true), and read the whole file back through stdio. */
export async function restore({ records }) {
  const t0 = now();
  await mount();
  await syncfs(true);
  const sum = m.ccall('ks_idbfs_checksum', 'number', ['string'], [FILE]);
  const ms = now() - t0;
  const size = m.FS.stat(FILE).size;
  if (sum < 0 || size !== records * RECORD_BYTES) throw new Error(`idbfs restore: ${size} bytes`);
  return { ms, sinceNavigation: performance.now() };
}
