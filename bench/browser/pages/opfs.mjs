// The page of bench/browser/opfs.mjs: the durable writes a small commit
// could be made of, each timed alone, and keepstate's small commit.
import { openStore } from 'keepstate';
import { done, openDb, recordBytes, recordKey } from './common.mjs';

const root = await navigator.storage.getDirectory();
const dir = await root.getDirectoryHandle('opfs-limits', { create: true });
const worker = new Worker(new URL('./opfs-worker.mjs', import.meta.url), { type: 'module' });
const waiting = new Map();
let nextId = 0;
worker.onmessage = ({ data }) => {
  const w = waiting.get(data.id);
  waiting.delete(data.id);
  if (data.error) w.reject(new Error(data.error));
  else w.resolve();
};
const inWorker = (op, name, bytes) =>
  new Promise((resolve, reject) => {
    const id = ++nextId;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, op, name, bytes });
  });

const db = await openDb('opfs-limits', ['s']);
function idbPut(key, bytes, durability = 'strict') {
  const t = db.transaction('s', 'readwrite', { durability });
  t.objectStore('s').put(bytes.slice(), key);
  return done(t);
}
async function writable(name, bytes) {
  const out = await (await dir.getFileHandle(name, { create: true })).createWritable();
  await out.write(bytes);
  await out.close();
}

/** `bytes` of a small commit: `records` 1 KiB records and their page overhead. */
const payload = (records) => {
  const b = new Uint8Array(records * 1024 + 4096);
  crypto.getRandomValues(b.subarray(0, 65536));
  return b;
};
const CONFIRM = new Uint8Array(64);

/** Each operation, by name: what it writes, durably. */
const OPS = {
  'idb-put': (i, b) => idbPut(`k${i}`, b),
  // Not durable: the browser has the bytes (a crash of the page keeps them; of the machine, not).
  'idb-put-relaxed': (i, b) => idbPut(`r${i}`, b, 'relaxed'),
  'opfs-writable-file': (i, b) => writable(`w${i}`, b),
  'opfs-writable-2-files': async (i, b) => {
    await writable(`wa${i}`, b);
    await writable(`wb${i}`, CONFIRM);
  },
  'opfs-sync-file': (i, b) => inWorker('file', `s${i}`, b),
  'opfs-sync-append': (i, b) => inWorker('append', null, b),
  // What keepstate does today: IndexedDB and the copy's packs at once, then the copy's head.
  'idb+writable, then writable': async (i, b) => {
    await Promise.all([idbPut(`a${i}`, b), writable(`pa${i}`, b)]);
    await writable(`ha${i}`, CONFIRM);
  },
  // A copy as a log: IndexedDB and the commit's entry at once, then a confirmation appended.
  'idb+append, then append': async (i, b) => {
    await Promise.all([idbPut(`b${i}`, b), inWorker('append', null, b)]);
    await inWorker('append', null, CONFIRM);
  },
};

window.opfsBench = {
  ops: () => Object.keys(OPS),
  /** Whether Workers have FileSystemSyncAccessHandle (pages never do). */
  syncHandles: () => inWorker('probe').then(() => true, () => false),
  /** `runs` of operation `op` writing `records` records' bytes: each run's ms. */
  async op(op, runs, records) {
    const b = payload(records);
    const ms = [];
    for (let i = 0; i < runs; ++i) {
      const t0 = performance.now();
      await OPS[op](`${op}-${i}`, b);
      ms.push(performance.now() - t0);
    }
    return ms;
  },
  /**
   * keepstate's commit of `records` changed 1 KiB records on a store of `total`, its defaults
   * (OPFS copy on) with `durability` (default 'strict'): each run's ms, and each run's phases
   * (OpenOptions.debugTimings).
   */
  async keepstate(runs, records, total, durability = 'strict') {
    let phases = {};
    const store = await openStore(`opfs-limits-${durability}`, { autosave: false, durability, debugTimings: (phase, ms) => (phases[phase] = (phases[phase] ?? 0) + ms) });
    for (let i = 0; i < total; ++i) store.put(recordKey(i), recordBytes(i, 0));
    await store.commit();
    const ms = [];
    const perRun = [];
    for (let run = 1; run <= runs; ++run) {
      for (let j = 0; j < records; ++j) store.put(recordKey((run * 97 + j * 13) % total), recordBytes(j, run));
      phases = {};
      const t0 = performance.now();
      await store.commit();
      ms.push(performance.now() - t0);
      perRun.push(phases);
    }
    await store.close();
    return { ms, phases: perRun };
  },
};
document.documentElement.dataset.ready = 'true';
