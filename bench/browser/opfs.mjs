// bench/browser/opfs.mjs: what a durable small commit can cost in this
// browser (issue 27, target 1): the durable writes a commit with a second
// copy in OPFS could be made of, each timed alone on an on-disk profile,
// beside keepstate's own small commit (store defaults: the OPFS copy on,
// durability 'strict') in the same page and run.
//
//   idb-put                      one IndexedDB readwrite transaction, durability 'strict', one value
//   opfs-writable-file           a new OPFS file: createWritable(), write, close() (what the copy does per file)
//   opfs-writable-2-files        two of them, one after the other (packs, then the head)
//   opfs-sync-file               a new file through a FileSystemSyncAccessHandle in a Worker: open, write, flush, close
//   opfs-sync-append             an append + flush() to a file whose sync handle stays open (a log)
//   idb+writable, then writable  IndexedDB and a file at once, then a second file: the copy's order today
//   idb+append, then append      IndexedDB and a log append at once, then a confirmation appended: a log copy
//
// Every operation writes the bytes of a commit of --records (default 10)
// 1 KiB records (plus a 4 KiB page of overhead).
//
//   node bench/browser/opfs.mjs [--browser chromium|firefox] [--runs N] [--records N]
//
// Prints median and p95 per operation and keepstate's ratio to the fastest
// way that keeps both copies; JSON in bench/results/browser-opfs[-firefox].json.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROUTES, startServer } from '../../e2e/server.mjs';
import { browserOption, loadAverage as load, median, openBrowser, option, percentile } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const RUNS = Number(option('--runs', argv) ?? 50);
const RECORDS = Number(option('--records', argv) ?? 10);
const STORE_RECORDS = 10_000;
const WARM_UP = 5;
const BROWSER = browserOption(argv);
const BOTH_COPIES = ['idb+writable, then writable', 'idb+append, then append'];

ROUTES.unshift(['/bench/', join(repo, 'bench/browser/pages')]);

const loadStart = load();
const server = await startServer({ port: 0 });
const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-opfs-'));
const browser = await openBrowser(BROWSER, profile);
const rows = [];
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}bench/opfs.html`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  const syncHandles = await page.evaluate(() => window.opfsBench.syncHandles());
  for (const op of await page.evaluate(() => window.opfsBench.ops())) {
    if (!syncHandles && /sync|append/.test(op)) {
      rows.push({ op, error: 'no FileSystemSyncAccessHandle in this browser' });
      continue;
    }
    try {
      const ms = await page.evaluate(([o, n, r]) => window.opfsBench.op(o, n, r), [op, RUNS + WARM_UP, RECORDS]);
      rows.push({ op, ms: ms.slice(WARM_UP) });
    } catch (e) {
      rows.push({ op, error: e.message.split('\n')[0] });
    }
  }
  const ks = await page.evaluate(([n, r, t]) => window.opfsBench.keepstate(n, r, t), [RUNS + WARM_UP, RECORDS, STORE_RECORDS]);
  rows.push({ op: `keepstate commit (${STORE_RECORDS.toLocaleString('en')} records, defaults)`, ms: ks.ms.slice(WARM_UP), phases: ks.phases.slice(WARM_UP), keepstate: true });
  const relaxed = await page.evaluate(([n, r, t]) => window.opfsBench.keepstate(n, r, t, 'relaxed'), [RUNS + WARM_UP, RECORDS, STORE_RECORDS]);
  rows.push({ op: `keepstate commit, durability 'relaxed'`, ms: relaxed.ms.slice(WARM_UP), phases: relaxed.phases.slice(WARM_UP), relaxed: true });
} finally {
  await browser.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}

const f = (x) => (x === undefined ? '-' : x.toFixed(2));
for (const r of rows) if (r.ms) Object.assign(r, { medianMs: median(r.ms), p95Ms: percentile(r.ms, 95) });
const both = rows.filter((r) => BOTH_COPIES.includes(r.op) && r.medianMs !== undefined);
const limit = both.reduce((a, b) => (b.medianMs < a.medianMs ? b : a), both[0]);
const ks = rows.find((r) => r.keepstate);
console.log(`\nDurable small commits (${RECORDS} KiB + 4 KiB; headless ${browser.version}, on-disk profile, ${RUNS} runs after ${WARM_UP} warm-up; node bench/browser/opfs.mjs${BROWSER === 'chromium' ? '' : ` --browser ${BROWSER}`})`);
console.log('| operation | median ms | p95 ms |');
console.log('| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.op} | ${r.error ? `failed: ${r.error}` : f(r.medianMs)} | ${r.error ? '' : f(r.p95Ms)} |`);
if (limit && ks) console.log(`keepstate / the fastest way with both copies (${limit.op}): ${(ks.medianMs / limit.medianMs).toFixed(2)}x`);
for (const k of rows.filter((r) => (r.keepstate || r.relaxed) && r.phases)) {
  // Where keepstate's commit went: the median of each phase over the runs (bench/browser/README.md names them).
  const names = [...new Set(k.phases.flatMap((p) => Object.keys(p)))];
  console.log(`\n${k.op} by phase (median ms over the runs; a phase that overlaps others counts once in each)`);
  console.log(`| ${names.join(' | ')} |`);
  console.log(`| ${names.map(() => '---').join(' | ')} |`);
  console.log(`| ${names.map((n) => f(median(k.phases.map((p) => p[n] ?? 0)))).join(' | ')} |`);
}
console.log(`load average: ${loadStart} at start, ${load()} at end`);

await mkdir(join(repo, 'bench/results'), { recursive: true });
const file = join(repo, `bench/results/browser-opfs${BROWSER === 'chromium' ? '' : `-${BROWSER}`}.json`);
await writeFile(file, JSON.stringify({ browser: browser.version, runs: RUNS, records: RECORDS, rows, loadStart, loadEnd: load(), date: new Date().toISOString() }, null, 2));
console.log(`wrote ${file}`);
