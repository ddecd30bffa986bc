// bench/browser/ceiling.mjs: how large a state grows in this browser (issue 27,
// target 3), against the limits that set it, measured in the same page:
//
//   - keepstate: 1 KiB records (incompressible) put and committed every
//     --every records (store defaults: IndexedDB and the OPFS copy) until a
//     put or a commit fails; then the state's size as store.export() writes
//     it, the error, and a page reload that reopens the last commit;
//   - wasm32's linear memory: a WebAssembly.Memory grown until grow()
//     refuses (at most 4 GiB): the arena, one block of it, grows by a copy
//     (or, where the old and new blocks do not fit side by side, through a
//     copy held in JS), and a commit stages its pages there too.
//
//   node bench/browser/ceiling.mjs [--browser chromium|firefox] [--every N]
//
// JSON in bench/results/browser-ceiling[-firefox].json.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../e2e/server.mjs';
import { browserOption, formatMs, loadAverage as load, log, openBrowser, option } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const BROWSER = browserOption(argv);
const EVERY = Number(option('--every', argv) ?? 250_000);
const GiB = 2 ** 30;

const loadStart = load();
const server = await startServer({ port: 0 });
const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-ceiling-'));
const browser = await openBrowser(BROWSER, profile);
let result;
try {
  const page = await browser.newPage();
  // Any document of the server's origin will do: the package's own entry, shown as text.
  await page.goto(`${server.url}keepstate/index.js`);
  const limits = await page.evaluate(async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
    for (let step = 16384; step >= 1; step >>= 1) {
      try {
        while (true) memory.grow(step);
      } catch {
        // this step no longer fits: a smaller one
      }
    }
    return { memoryBytes: memory.buffer.byteLength };
  });
  log(`linear memory ${(limits.memoryBytes / GiB).toFixed(2)} GiB`);
  await page.reload();
  const filled = await page.evaluate(async (every) => {
    const ks = await import('/keepstate/index.js');
    const store = await ks.openStore('ceiling', { autosave: false });
    const value = new Uint8Array(1024);
    const words = new Uint32Array(value.buffer);
    let x = 1;
    let records = 0;
    let committed = 0;
    let error = null;
    const t0 = performance.now();
    try {
      for (;;) {
        for (let k = 0; k < words.length; ++k) words[k] = x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        store.put(`r/${String(records).padStart(8, '0')}`, value);
        ++records;
        if (records % every === 0) {
          await store.commit();
          committed = records;
        }
      }
    } catch (e) {
      error = `${e.name}: ${e.message}`;
    }
    let lastCommit = null;
    try {
      await store.commit();
      committed = records;
    } catch (e) {
      lastCommit = `${e.name}: ${e.message}`;
    }
    const seconds = (performance.now() - t0) / 1000;
    const exported = await store.export();
    return { records, committed, error, lastCommit, seconds, stateBytes: exported.size, version: store.version };
  }, EVERY);
  log(`${filled.committed} records committed, state ${(filled.stateBytes / GiB).toFixed(3)} GiB; stopped by ${filled.error}`);
  await page.reload();
  const reopened = await page.evaluate(async (committed) => {
    const ks = await import('/keepstate/index.js');
    const t0 = performance.now();
    const store = await ks.openStore('ceiling', { autosave: false });
    const ms = performance.now() - t0;
    return { version: store.version, ms, last: store.get(`r/${String(committed - 1).padStart(8, '0')}`)?.length ?? 0 };
  }, filled.committed);
  result = { browser: browser.version, load: { start: loadStart, end: load() }, every: EVERY, limits, filled, reopened };
} finally {
  await browser.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}

const gib = (b) => `${(b / GiB).toFixed(3)} GiB`;
const { limits, filled, reopened } = result;
console.log(`State ceiling (${result.browser}, on-disk profile, store defaults incl. the OPFS copy; load ${result.load.start} at start, ${result.load.end} at end; ${['node bench/browser/ceiling.mjs', ...argv].join(' ')})`);
console.log('| what | figure |');
console.log('| --- | --- |');
console.log(`| keepstate: largest state committed (store.export() size) | ${gib(filled.stateBytes)} (${filled.committed.toLocaleString('en-US')} records of 1 KiB, version ${filled.version}) |`);
console.log(`| what stopped it | ${filled.error}${filled.lastCommit ? `; the last commit: ${filled.lastCommit}` : ''} |`);
console.log(`| reopened after a page reload | version ${reopened.version} in ${formatMs(reopened.ms)} ms; last record ${reopened.last === 1024 ? 'read back' : 'MISSING'} |`);
console.log(`| limit: wasm32 linear memory this browser gives | ${gib(limits.memoryBytes)} |`);
console.log(`| state ÷ linear memory | ${(filled.stateBytes / limits.memoryBytes).toFixed(2)}x |`);
await mkdir(join(repo, 'bench/results'), { recursive: true });
await writeFile(join(repo, `bench/results/browser-ceiling${BROWSER === 'firefox' ? '-firefox' : ''}.json`), JSON.stringify(result, null, 2) + '\n');
