// bench/browser/files.mjs: snapshot files from a user's seat (issue 16), in
// headless Chromium (Debian's, an on-disk persistent profile): store.export()
// and importStore() of a state of N MiB of 1 KiB random records, against the
// physical limit in the same page — one raw IndexedDB put of a Blob of the
// same bytes, and a raw get of it that reads every byte (a value read from
// IndexedDB arrives lazily, so the limit includes reading it).
//
//   node bench/browser/files.mjs [--browser chromium|firefox] [--runs N] [--sizes 16,64]
//   make bench-browser (runs it after run.mjs)
//
// Prints a table with MB/s beside each ratio; JSON in bench/results/browser-files.json.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../e2e/server.mjs';
import { browserOption, median, openBrowser, option } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name) => option(name, argv);
const RUNS = Number(opt('--runs') ?? 3);
const SIZES_MIB = opt('--sizes')?.split(',').map(Number) ?? [64];
const PARTIAL = ['--runs', '--sizes'].some((o) => argv.includes(o));
const BROWSER = browserOption(argv);
let browserVersion = BROWSER;

const PAGE = () => {
  const idb = (name) =>
    new Promise((resolve, reject) => {
      const q = indexedDB.open(name, 1);
      q.onupgradeneeded = () => q.result.createObjectStore('s');
      q.onsuccess = () => resolve(q.result);
      q.onerror = () => reject(q.error);
    });
  const done = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
  window.f = {
    async init() {
      this.ks = await import('/js-bindings/dist/index.js');
    },
    async fill(mib) {
      this.store = await this.ks.openStore(`files-${mib}`, { autosave: false });
      const value = new Uint8Array(1024);
      for (let i = 0; i < mib * 1024; ++i) {
        if ((i & 1023) === 0) crypto.getRandomValues(value);
        value[i & 1023] ^= 0xa5;
        this.store.put(`r/${String(i).padStart(8, '0')}`, value);
      }
      await this.store.commit();
    },
    async exportOnce() {
      const t0 = performance.now();
      this.file = await this.store.export();
      return { ms: performance.now() - t0, bytes: this.file.size };
    },
    async importOnce(run) {
      const t0 = performance.now();
      const s = await this.ks.importStore(`imported-${run}-${Math.random()}`, this.file, { autosave: false });
      const ms = performance.now() - t0;
      await s.close();
      return ms;
    },
    // The limit: one raw put of a Blob of the file's bytes, and a get that reads every byte.
    async rawPut() {
      const db = await idb('raw-files');
      const bytes = new Uint8Array(await this.file.arrayBuffer());
      const t0 = performance.now();
      const tx = db.transaction('s', 'readwrite', { durability: 'strict' });
      tx.objectStore('s').put(bytes, 'state');
      await done(tx);
      const ms = performance.now() - t0;
      db.close();
      return ms;
    },
    async rawGet() {
      const db = await idb('raw-files');
      const t0 = performance.now();
      const value = await new Promise((resolve, reject) => {
        const q = db.transaction('s').objectStore('s').get('state');
        q.onsuccess = () => resolve(q.result);
        q.onerror = () => reject(q.error);
      });
      let sum = 0;
      for (let i = 0; i < value.length; i += 4096) sum += value[i];
      const ms = performance.now() - t0;
      db.close();
      return { ms, sum };
    },
  };
};

const server = await startServer({ port: 0, root: repo });
const results = [];
try {
  for (const mib of SIZES_MIB) {
    process.stderr.write(`files: ${mib} MiB...\n`);
    const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-files-'));
    const context = await openBrowser(BROWSER, profile);
  browserVersion = context.version;
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/e2e/support/web/harness.html?mode=page`);
      await page.evaluate(PAGE);
      await page.evaluate(() => window.f.init());
      await page.evaluate((m) => window.f.fill(m), mib);
      const r = { mib, export: [], import: [], rawPut: [], rawGet: [], bytes: 0 };
      for (let run = 0; run < RUNS; ++run) {
        const e = await page.evaluate(() => window.f.exportOnce());
        r.export.push(e.ms);
        r.bytes = e.bytes;
        r.import.push(await page.evaluate((k) => window.f.importOnce(k), run));
        r.rawPut.push(await page.evaluate(() => window.f.rawPut()));
        r.rawGet.push((await page.evaluate(() => window.f.rawGet())).ms);
      }
      results.push(r);
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  }
} finally {
  await server.close();
}
const mbs = (bytes, ms) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
console.log(`\nSnapshot files (headless ${browserVersion}, ${RUNS} runs, medians; node bench/browser/files.mjs)`);
console.log('| state | file | export() | raw get of the bytes (every page read) | ratio | importStore() | raw put of the bytes | ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const [e, g, i, p] = [median(r.export), median(r.rawGet), median(r.import), median(r.rawPut)];
  console.log(`| ${r.mib} MiB | ${(r.bytes / 2 ** 20).toFixed(1)} MiB | ${e.toFixed(0)} ms (${mbs(r.bytes, e)} MB/s) | ${g.toFixed(0)} ms (${mbs(r.bytes, g)} MB/s) | ${(e / g).toFixed(2)}x | ${i.toFixed(0)} ms (${mbs(r.bytes, i)} MB/s) | ${p.toFixed(0)} ms (${mbs(r.bytes, p)} MB/s) | ${(i / p).toFixed(2)}x |`);
}
await mkdir(join(repo, 'bench/results'), { recursive: true });
const out = join(repo, 'bench/results', `browser-files${BROWSER === 'chromium' ? '' : `-${BROWSER}`}${PARTIAL ? '-partial' : ''}.json`);
await writeFile(out, JSON.stringify({ browser: browserVersion, cpu: os.cpus()[0]?.model, cores: os.cpus().length, runs: RUNS, results }, null, 2));
console.log(`\n${out}`);
