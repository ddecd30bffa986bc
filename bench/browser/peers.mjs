// bench/browser/peers.mjs: keepstate against the stores users would pick
// instead (issue 27), on a store of 10,000 records of 1 KiB, each contender
// in the same run and the same benchmark page (pages/, one fresh on-disk
// profile per contender):
//
//   keepstate        the npm package (js-bindings/dist), store defaults (OPFS copy on,
//                    durability 'strict'), autosave off: put + commit()
//   raw IndexedDB    one record per key, readwrite transactions with durability 'strict'
//   SQLite WASM      @sqlite.org/sqlite-wasm in a Worker, PRAGMA synchronous=FULL, on the
//                    opfs-sahpool VFS and on the opfs VFS (cross-origin isolated page)
//   PGlite           @electric-sql/pglite, idb:// storage
//   Replicache       replicache, no server: mutate + persist()
//
// What "durable" means for each is printed under the table (and written in
// each contender's module). Per contender:
//   bulk load        10,000 records in one durable transaction, into --loads fresh stores
//   rewrite          one 1 KiB record, durable, --commits times (the same seeded records
//                    for everyone): median and p95
//   scan             the 1,000 keys starting with r/00001, --scans times: median
//   relaunch         the browser closed and launched again on the same profile (--relaunches
//                    times): open -> first point read, and open -> all 10,000 records read
//                    (from the same start): medians
//
//   node bench/browser/peers.mjs [--quick] [--browser chromium|firefox] [--contenders keepstate,raw,...]
//                                [--commits N] [--loads N] [--relaunches N] [--scans N]
//   make bench-browser (runs it after seat.mjs)
//
// Prints one table (keepstate, every contender, keepstate / the best
// contender), what durable means for each, and where keepstate's open ->
// first read went (OpenOptions.debugTimings); JSON in
// bench/results/browser-peers*.json. A contender that fails in this browser
// is a failed figure with its reason.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COI_HEADERS, ROUTES, startServer } from '../../e2e/server.mjs';
import { browserOption, formatMs, loadAverage, log, median, openBenchPage, openBrowser, option, percentile } from './launch.mjs';
import { recordKey, rewriteIds } from './pages/common.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name) => option(name, argv);
const quick = argv.includes('--quick');
const BROWSER = browserOption(argv);
const RECORDS = 10_000;
const COMMITS = Number(opt('--commits') ?? (quick ? 50 : 200));
const LOADS = Number(opt('--loads') ?? (quick ? 2 : 3));
const RELAUNCHES = Number(opt('--relaunches') ?? (quick ? 3 : 5));
const SCANS = Number(opt('--scans') ?? (quick ? 10 : 20));
const PREFIX = 'r/00001'; // records 1000..1999
const SCANNED = 1000;
const KEY = recordKey(4321); // the first point read after a relaunch
const PARTIAL = ['--contenders', '--commits', '--loads', '--relaunches', '--scans'].some((o) => argv.includes(o));
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_S ?? 600) * 1000;

const pkg = async (name) => JSON.parse(await readFile(join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
const CONTENDERS = [
  {
    id: 'keepstate',
    label: 'keepstate',
    short: 'keepstate',
    durable: "commit() resolves once IndexedDB completed the commit's transaction with durability 'strict' and the OPFS copy holds it (store defaults)",
  },
  {
    id: 'raw',
    label: 'raw IndexedDB (strict)',
    short: 'raw IndexedDB',
    durable: "the readwrite transaction (one record per key) completed with durability 'strict'",
  },
  {
    id: 'sqlite-sahpool',
    short: 'SQLite opfs-sahpool',
    label: `SQLite WASM ${await pkg('@sqlite.org/sqlite-wasm')}, opfs-sahpool (Worker, synchronous=FULL)`,
    durable: 'COMMIT returned with synchronous=FULL: the database file and journal flushed (FileSystemSyncAccessHandle.flush) before the worker answers',
  },
  {
    id: 'sqlite-opfs',
    short: 'SQLite opfs',
    label: `SQLite WASM ${await pkg('@sqlite.org/sqlite-wasm')}, opfs (Worker, synchronous=FULL)`,
    page: 'bench-coi/',
    durable: "as opfs-sahpool, through the VFS's async proxy Worker (SharedArrayBuffer: the page is cross-origin isolated)",
  },
  {
    id: 'pglite',
    short: 'PGlite',
    label: `PGlite ${await pkg('@electric-sql/pglite')} (idb://)`,
    durable: "query() resolves after PGlite's sync of its data directory to IndexedDB (relaxedDurability: false, its default); that sync's transaction asks for no durability, so it gets the browser's default ('relaxed' in Chromium: it may complete before the disk has the data); transaction() does not sync, so the load awaits pg.syncToFs() after it",
  },
  {
    id: 'replicache',
    short: 'Replicache',
    label: `Replicache ${await pkg('replicache')} (mutate + persist)`,
    durable: "mutate, then persist() (Replicache's own persist runs within about a second, on its schedule); it writes IndexedDB with durability 'relaxed'; values are base64 text (1,368 characters per record)",
  },
];
const only = opt('--contenders')?.split(',');
const contenders = only ? CONTENDERS.filter((c) => only.includes(c.id)) : CONTENDERS;
if (only && contenders.length !== only.length) throw new Error(`--contenders: known are ${CONTENDERS.map((c) => c.id).join(', ')}`);

const pages = join(repo, 'bench/browser/pages');
ROUTES.unshift(
  ['/bench/', pages],
  // SQLite's opfs VFS needs SharedArrayBuffer: its page, and the library whose Worker it starts, are cross-origin isolated.
  ['/bench-coi/', pages, COI_HEADERS],
  ['/sqlite-coi/', join(repo, 'node_modules/@sqlite.org/sqlite-wasm/dist'), COI_HEADERS],
);
// KEEPSTATE_DIST=<dir>: serve another build of the package (development: before/after figures).
if (process.env.KEEPSTATE_DIST) ROUTES.unshift(['/keepstate/', process.env.KEEPSTATE_DIST]);

/** `promise`, or a rejection after RUN_TIMEOUT_MS (a page that hangs is a failed figure, not a hung run). */
function timed(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn(run)` in the benchmark page of contender `c`, in a browser on `profile`, closed afterwards. */
async function inBrowser(server, profile, c, fn) {
  const browser = await openBrowser(BROWSER, profile);
  try {
    const { run } = await openBenchPage(browser, `${server.url}${c.page ?? 'bench/'}`);
    return { version: browser.version, result: await fn((op, args) => timed(run(c.id, op, args), `${c.id}.${op}`)) };
  } finally {
    await browser.close();
  }
}

/** A figure: { ms, ... } or { error }. */
async function figure(what, fn) {
  try {
    return await fn();
  } catch (e) {
    const error = e.message.split('\n')[0];
    log(`${what}: ERROR ${error}`);
    return { error };
  }
}

let browserVersion = BROWSER;

async function measure(server, c) {
  const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-peers-'));
  const out = { id: c.id, label: c.label, short: c.short, durable: c.durable };
  const last = `peers-${LOADS - 1}`;
  try {
    const session = await figure(`${c.id} session`, () =>
      inBrowser(server, profile, c, async (run) => {
        const loads = [];
        const load = await figure(`${c.id} load`, async () => {
          for (let i = 0; i < LOADS; ++i) loads.push(await run('peersLoad', { name: `peers-${i}`, records: RECORDS }));
          return { ms: median(loads.map((l) => l.ms)), runs: loads.map((l) => l.ms), version: loads[0].version };
        });
        log(`${c.id}: load ${load.error ?? `${formatMs(load.ms)} ms`}`);
        const rewrite = await figure(`${c.id} rewrite`, async () => {
          const { ms } = await run('peersRewrite', { ids: rewriteIds(RECORDS, COMMITS, 27), gen: 1 });
          return { ms: median(ms), p95: percentile(ms, 95), runs: ms };
        });
        log(`${c.id}: rewrite ${rewrite.error ?? `${formatMs(rewrite.ms)} / ${formatMs(rewrite.p95)} ms`}`);
        const scan = await figure(`${c.id} scan`, async () => {
          const { ms } = await run('peersScan', { prefix: PREFIX, expect: SCANNED, runs: SCANS });
          return { ms: median(ms), runs: ms };
        });
        log(`${c.id}: scan ${scan.error ?? `${formatMs(scan.ms)} ms`}`);
        return { load, rewrite, scan };
      }),
    );
    if (session.error) Object.assign(out, { load: session, rewrite: session, scan: session });
    else {
      browserVersion = session.version;
      Object.assign(out, session.result);
    }
    const opens = [];
    const relaunch = await figure(`${c.id} relaunch`, async () => {
      if (out.load.error) throw new Error(`no store to open (the load failed: ${out.load.error})`);
      for (let r = 0; r < RELAUNCHES; ++r) {
        opens.push((await inBrowser(server, profile, c, (run) => run('peersOpen', { name: last, records: RECORDS, key: KEY }))).result);
      }
      const phases = [...new Set(opens.flatMap((o) => Object.keys(o.phases ?? {})))];
      return {
        first: median(opens.map((o) => o.firstMs)),
        all: median(opens.map((o) => o.allMs)),
        runs: opens,
        ...(phases.length ? { phases: Object.fromEntries(phases.map((p) => [p, median(opens.map((o) => o.phases?.[p] ?? 0))])) } : {}),
      };
    });
    out.first = relaunch.error ? relaunch : { ms: relaunch.first, runs: opens.map((o) => o.firstMs), phases: relaunch.phases };
    out.all = relaunch.error ? relaunch : { ms: relaunch.all, runs: opens.map((o) => o.allMs) };
    log(`${c.id}: relaunch ${relaunch.error ?? `first read ${formatMs(relaunch.first)} ms, all ${formatMs(relaunch.all)} ms`}`);
    return out;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

const loadStart = loadAverage();
const server = await startServer({ port: 0 }); // 127.0.0.1 only
const results = [];
try {
  for (const c of contenders) results.push(await measure(server, c));
} finally {
  await server.close();
}
const loadEnd = loadAverage();

// --- the table --------------------------------------------------------------------------

const ROWS = [
  ['rewrite', 'rewrite one 1 KiB record, durable: median / p95', (f) => `${formatMs(f.ms)} / ${formatMs(f.p95)} ms`],
  ['load', `bulk load, one durable transaction (median of ${LOADS})`, (f) => `${formatMs(f.ms)} ms`],
  ['first', `browser relaunched: open → first point read (median of ${RELAUNCHES})`, (f) => `${formatMs(f.ms)} ms`],
  ['all', `… → all ${RECORDS.toLocaleString('en')} records read`, (f) => `${formatMs(f.ms)} ms`],
  ['scan', `scan ${SCANNED.toLocaleString('en')} keys by prefix (median of ${SCANS})`, (f) => `${formatMs(f.ms)} ms`],
];
const cell = (f, show) => (f === undefined ? '' : f.error ? `failed: ${f.error}` : show(f));
const ks = results.find((r) => r.id === 'keepstate');
const others = results.filter((r) => r.id !== 'keepstate');
const ratios = {};
const argsShown = argv.join(' ');
console.log(`\nkeepstate against the contenders users would pick instead (headless ${browserVersion}, on-disk profiles, ${RECORDS.toLocaleString('en')} records of 1 KiB; ` +
  `${COMMITS} rewrites, ${LOADS} loads, ${RELAUNCHES} relaunches, ${SCANS} scans; load ${loadStart} at start, ${loadEnd} at end; node bench/browser/peers.mjs${argsShown ? ` ${argsShown}` : ''})`);
console.log(`| ${RECORDS.toLocaleString('en')} records of 1 KiB | ${results.map((r) => r.label).join(' | ')} | keepstate / best contender |`);
console.log(`| --- | ${results.map(() => '---').join(' | ')} | --- |`);
for (const [row, what, show] of ROWS) {
  const ok = others.filter((r) => r[row] && !r[row].error);
  let ratio = '';
  if (ks && ks[row] && !ks[row].error && ok.length) {
    const best = ok.reduce((a, b) => (b[row].ms < a[row].ms ? b : a));
    ratios[row] = { ratio: ks[row].ms / best[row].ms, best: best.id };
    ratio = `${ratios[row].ratio.toFixed(2)}x (${best.short})`;
    if (row === 'rewrite') {
      const bestP95 = ok.reduce((a, b) => (b[row].p95 < a[row].p95 ? b : a));
      ratios.rewriteP95 = { ratio: ks[row].p95 / bestP95[row].p95, best: bestP95.id };
      ratio += `; p95 ${ratios.rewriteP95.ratio.toFixed(2)}x (${bestP95.short})`;
    }
  }
  console.log(`| ${what} | ${results.map((r) => cell(r[row], show)).join(' | ')} | ${ratio} |`);
}
console.log('\nWhat "durable" means for each');
for (const r of results) console.log(`- ${r.label}: ${r.durable}`);

if (ks?.first?.phases) {
  const p = ks.first.phases;
  console.log(`\nWhere keepstate's open → first point read went (median ms of ${RELAUNCHES} relaunches; OpenOptions.debugTimings, bench/browser/README.md names each phase; restore.opfs-check runs beside the IndexedDB reads)`);
  console.log(`| total | ${Object.keys(p).join(' | ')} |`);
  console.log(`| --- | ${Object.keys(p).map(() => '---').join(' | ')} |`);
  console.log(`| ${formatMs(ks.first.ms)} | ${Object.values(p).map(formatMs).join(' | ')} |`);
}

await mkdir(join(repo, 'bench/results'), { recursive: true });
const suffix = `${BROWSER === 'chromium' ? '' : `-${BROWSER}`}${PARTIAL ? '-partial' : quick ? '-quick' : ''}`;
const outFile = join(repo, 'bench/results', `browser-peers${suffix}.json`);
await writeFile(outFile, JSON.stringify({ browser: browserVersion, cpu: os.cpus()[0]?.model, cores: os.cpus().length, records: RECORDS,
  commits: COMMITS, loads: LOADS, relaunches: RELAUNCHES, scans: SCANS, load: { start: loadStart, end: loadEnd }, ratios, results }, null, 2));
console.log(`\n${outFile}`);
