// bench/browser: keepstate side by side with what users would pick instead,
// in one run, in the same headless Chromium (Debian's, on-disk persistent
// profiles, durability 'strict' everywhere) — issue 7.
//
//   node bench/browser/run.mjs [--quick] [--browser chromium|firefox] [--only transactions,commit,restore,fibers] [--runs N]
//                              [--sizes 16,64] [--contenders keepstate,raw] [--raw-record-mib 2]
//                                                                          (development)
//   make bench-browser                  (builds first; BENCH_ARGS=--quick for the small run)
//
// Workloads (pages/contenders/*.mjs do the work inside the page; this file
// drives them, takes medians, prints tables, writes JSON and SVG charts to
// bench/results/):
//   transactions  the ledger's transfer over 1,000,000 accounts: keepstate
//                 from C++ fibers (store.call('transfer_batch')) and from JS
//                 (store.transaction), Dexie, wa-sqlite, a JS Map
//   commit        latency after changing 1 KiB, 64 KiB, 1 %, 100 % of a state
//                 of 16/64/256 MiB: keepstate, raw IndexedDB (the limit),
//                 IDBFS syncfs, wa-sqlite COMMIT, Dexie bulkPut
//   restore       after a page reload, until the state is verified and
//                 usable: keepstate, raw IndexedDB read (the limit), IDBFS
//   fibers        yield ring and 1M spawn: keepstate's coroutines against
//                 emscripten_fiber_swap (Asyncify)
// Each contender runs in its own fresh browser profile; every figure is the
// median of `runs` runs (5; --quick: 3) after the same setup, however long
// a run takes. A figure that fails (an exception in the page, a crash, a run
// over RUN_TIMEOUT_MS) is recorded with its error message and the run goes on.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROUTES, startServer } from '../../e2e/server.mjs';
import { browserOption, loadAverage as load, log, median, openBrowser, option } from './launch.mjs';
import { barChart } from './svg.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const resultsDir = join(repo, 'bench/results');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const opt = (name) => option(name, argv);
const RUNS = Number(opt('--runs') ?? (quick ? 3 : 5));
const ONLY = (opt('--only') ?? 'transactions,commit,restore,fibers').split(',');
const SIZES_MIB = opt('--sizes')?.split(',').map(Number) ?? (quick ? [16, 64] : [16, 64, 256]);
const ACCOUNTS = 1_000_000;
const BATCH = 65_536; // transfers per transaction for the batched contenders (the ledger's kTransfersPerTxn)
const RECORD = 1024;
// SQLite page size for wa-sqlite (IDBBatchAtomicVFS stores one IndexedDB
// record per page); see README.md for why this value.
const WA_SQLITE_PAGE_SIZE = Number(process.env.WA_SQLITE_PAGE_SIZE ?? 4096);
// --contenders a,b: run only these (development).
const CONTENDERS = opt('--contenders')?.split(',');
// Size of the values the raw limit puts (MiB): 1 and 2 were the fastest of
// 1/2/4/8 (README.md); --raw-record-mib measures the others.
const RAW_RECORD_MIB = Number(opt('--raw-record-mib') ?? 2);
const wanted = (id) => !CONTENDERS || CONTENDERS.includes(id);
// A partial run (any development option) writes its own files, so that it
// never replaces the JSON and charts of the last full or --quick run.
const PARTIAL = ['--only', '--runs', '--sizes', '--contenders', '--raw-record-mib'].some((o) => argv.includes(o));

// Routes added to the e2e server's table (longest prefix first): this page
// and the wasm programs of bench/browser/CMakeLists.txt.
ROUTES.unshift(
  ['/bench-build/', join(repo, 'build/wasm-release/bench/browser')],
  ['/bench/', join(repo, 'bench/browser/pages')],
);



let server;
const BROWSER = browserOption(argv);
let chromiumVersion = BROWSER;

/** A fresh profile and page for one contender; closes and deletes both afterwards. */
async function withPage(fn) {
  const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-bench-'));
  const context = await openBrowser(BROWSER, profile);
  chromiumVersion = context.version;
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('crash', () => errors.push('the page crashed')); // Chromium only
  // Set when a call timed out: the page may still be busy with it, so the
  // calls after it fail at once instead of queueing behind it.
  let broken;
  const ready = async () => {
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  };
  const h = {
    page,
    async goto() {
      await page.goto(`${server.url}bench/`);
      await ready();
    },
    async reload() {
      await page.reload();
      await ready();
    },
    async run(contender, op, args = {}) {
      if (broken) throw new Error(`${contender}.${op}: not run: ${broken}`);
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
      });
      try {
        const call = page.evaluate(([c, o, a]) => window.bench.run(c, o, a), [contender, op, args]);
        call.catch(() => {}); // after a timeout it rejects when the context closes: not unhandled
        return await Promise.race([call, timeout]);
      } catch (e) {
        const message = `${contender}.${op}: ${e.message.split('\n')[0]}${errors.length ? ` (page: ${errors.at(-1)})` : ''}`;
        if (e.message.startsWith('timed out')) broken = `an earlier call timed out (${message})`;
        throw new Error(message);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  try {
    await h.goto();
    return await fn(h);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

// One call into the page (a setup or one run) longer than this is a failure
// of its figure. The longest seen are about 80 s (wa-sqlite's 100 % rewrite of
// 256 MiB) and 50 s (its setup) on a loaded 2-core machine. BENCH_RUN_TIMEOUT_S
// changes it (to try the timeout path).
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_S ?? 600) * 1000;

/**
 * Runs `once` RUNS times: { median, runs, details, wallMs } of the field `key`.
 * Every figure gets all RUNS runs (issue 7: the median of at least 5); wallMs
 * is the wall time of all of them, untimed preparation included.
 */
async function measure(once, key = 'ms') {
  const t0 = Date.now();
  const runs = [];
  for (let r = 0; r < RUNS; ++r) runs.push(await once(r));
  return { median: median(runs.map((x) => x[key])), runs: runs.map((x) => x[key]), details: runs, wallMs: Date.now() - t0 };
}

async function guard(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${what}: ERROR ${e.message}`);
    return { error: e.message };
  }
}

// ---------------------------------------------------------------------------
// 1. transactions

const TX_CONTENDERS = [
  // [id, label, contender module, op, transfers per run]
  ['keepstate-fibers', 'keepstate, C++ fibers (transfer_batch calls)', 'keepstate', 'transfersFibers', 1_048_576],
  ['keepstate-js', 'keepstate, JS (store.transaction per transfer)', 'keepstate', 'transfersJs', quick ? 100_000 : 200_000],
  ['keepstate-abi', 'keepstate, JS straight on the C ABI (attribution: no Store/Access layer)', 'keepstate', 'transfersAbi', quick ? 100_000 : 200_000],
  ['dexie', 'Dexie (bulkGet/bulkPut, 1 rw txn per run)', 'dexie', 'transfersJs', 16_384],
  ['wa-sqlite', 'wa-sqlite (SELECT x2 + UPDATE x2, batch per txn)', 'wa-sqlite', 'transfersJs', quick ? 32_768 : 65_536],
  ['map', 'JS Map (in memory, no persistence)', 'map', 'transfersJs', 1_048_576],
];

// The user's-seat put/get figures (issue 17), in the transactions workload:
// API_KEYS fresh keys of API_VALUE_BYTES random bytes each (README.md says
// why these sizes): keepstate's store.put against Map.set(key, value.slice()),
// store.get against Map.get. Each in its own page, no ledger loaded.
const API_KEYS = quick ? 250_000 : 1_000_000;
const API_VALUE_BYTES = 256;
const API_CONTENDERS = [
  // [id, label, contender module]
  ['keepstate', 'keepstate store.put / store.get (openStore defaults, autosave off)', 'keepstate'],
  ['map', 'JS Map: set(key, value.slice()) / get(key)', 'map'],
];

async function apiWorkload() {
  const out = {};
  for (const [id, label, mod] of API_CONTENDERS) {
    if (!wanted(`api-${id}`) && !wanted(mod)) continue;
    out[id] = await guard(`api ${id}`, () =>
      withPage(async (h) => {
        if (mod === 'keepstate') await h.run(mod, 'apiSetup', { name: 'api' });
        const args = (seed) => ({ n: API_KEYS, valueBytes: API_VALUE_BYTES, seed });
        await h.run(mod, 'apiRun', { ...args(7), n: 4096 }); // warm-up, not counted
        const m = await measure((r) => h.run(mod, 'apiRun', args(1000 + r)), 'putPerSecond');
        const get = median(m.details.map((d) => d.getPerSecond));
        log(`api ${id}: put ${int(m.median)}/s, get ${int(get)}/s`);
        return { label, keys: API_KEYS, valueBytes: API_VALUE_BYTES, put: { median: m.median, runs: m.runs }, get: { median: get, runs: m.details.map((d) => d.getPerSecond) }, details: m.details, wallMs: m.wallMs };
      }),
    );
    out[id].label ??= label;
  }
  return out;
}

async function transactionsWorkload() {
  const out = { api: await apiWorkload() };
  for (const [id, label, mod, op, n] of TX_CONTENDERS) {
    if (!wanted(id) && !wanted(mod)) continue;
    out[id] = await guard(id, () =>
      withPage(async (h) => {
        const setupOp = 'ledgerSetup';
        const setup = await h.run(mod, setupOp, { name: `ledger-${id}`, accounts: ACCOUNTS, pageSize: WA_SQLITE_PAGE_SIZE });
        log(`transactions ${id}: ${ACCOUNTS} accounts in ${setup.ms.toFixed(0)} ms`);
        const args = (seed) => ({ n, accounts: ACCOUNTS, seed, batch: BATCH });
        await h.run(mod, op, { ...args(7), n: Math.min(n, 4096) }); // warm-up (JIT, caches), not counted
        const m = await measure((r) => h.run(mod, op, args(1000 + r)), 'perSecond');
        log(`transactions ${id}: ${Math.round(m.median).toLocaleString('en-US')} txns/s`);
        return { label, transfersPerRun: n, setup, ...m };
      }),
    );
    out[id].label ??= label;
  }
  return out;
}

// ---------------------------------------------------------------------------
// 2. commit latency and 3. restore (same profile: restore reloads the page
// onto the state the commit runs left)

const CHANGES = [
  ['1KiB', '1 KiB', () => 1],
  ['64KiB', '64 KiB', () => 64],
  ['1pct', '1 %', (records) => Math.round(records / 100)],
  ['100pct', '100 %', (records) => records],
];
const COMMIT_CONTENDERS = [
  ['keepstate', 'keepstate commit()'],
  ['keepstate-nocopy', 'keepstate commit(), copy: false (no OPFS copy)'],
  ['raw', 'raw IndexedDB put of the changed bytes (limit)'],
  ['idbfs', 'IDBFS FS.syncfs (state as one file)'],
  ['wa-sqlite', 'wa-sqlite COMMIT (IDBBatchAtomicVFS)'],
  ['dexie', 'Dexie bulkPut of the changed records'],
];
const RESTORES = new Set(['keepstate', 'keepstate-nocopy', 'raw', 'idbfs']);

/** Reloads the page `RUNS` times and times the contender's restore after each load. */
function measureRestore(h, id, args) {
  return measure(async () => {
    await h.reload();
    return h.run(id, 'restore', args);
  });
}

async function commitAndRestoreWorkload(doCommit, doRestore) {
  const commit = {};
  const restore = {};
  for (const mib of SIZES_MIB) {
    const records = (mib << 20) / RECORD;
    const bytes = mib << 20;
    commit[mib] = {};
    restore[mib] = {};
    const fail = (id, what) => (r) => {
      if (!r?.error) return;
      if (what === 'commit') {
        for (const [change] of CHANGES) (commit[mib][change] ??= {})[id] ??= { error: r.error };
        if (id === 'keepstate' && doRestore) restore[mib].keepstateAfterCommits ??= { error: r.error };
      } else restore[mib][id] ??= { error: r.error };
    };
    const setup = async (h, id, name) => {
      const s = await h.run(id, 'commitSetup', { name, records, pageSize: WA_SQLITE_PAGE_SIZE });
      log(`${id} ${mib} MiB: setup ${s.ms.toFixed(0)} ms${s.bytesWritten ? `, first commit ${(s.bytesWritten / 1048576).toFixed(1)} MiB stored` : ''}`);
      return s;
    };
    // Commit latency: one profile per contender; the cells run in order on the same state.
    for (const [id] of doCommit ? COMMIT_CONTENDERS : []) {
      if (!wanted(id)) continue;
      const t0 = Date.now();
      await guard(`${id} ${mib} MiB`, () =>
        withPage(async (h) => {
          const name = `state-${mib}`;
          if (id !== 'raw') ((commit[mib].setup ??= {})[id] = await setup(h, id, name));
          for (const [change, , countOf] of CHANGES) {
            const count = countOf(records);
            const cell = await guard(`${id} ${mib} MiB ${change}`, () =>
              measure((r) =>
                id === 'raw'
                  ? h.run('raw', 'commitRun', { name, bytes: count * RECORD, gen: r + 1, recordMiB: RAW_RECORD_MIB })
                  : h.run(id, 'commitRun', { records, count, seed: 77 + r, gen: r + 1 })),
            );
            (commit[mib][change] ??= {})[id] = cell;
            log(`commit ${mib} MiB ${change} ${id}: ${cell.error ? `ERROR ${cell.error}` : `${cell.median.toFixed(1)} ms (${RUNS} runs in ${(cell.wallMs / 1000).toFixed(0)} s)`}`);
            // Attribution: a raw put of exactly the records keepstate's last
            // commit of this cell wrote (pages, manifest, head), in this page.
            if (id === 'keepstate' && !cell.error) {
              const replay = await guard(`raw replay of keepstate's records ${mib} MiB ${change}`, () =>
                measure(() => h.run('keepstate', 'replayLastCommit', { name })));
              commit[mib][change].rawKeepstateRecords = replay;
              log(`commit ${mib} MiB ${change} raw replay of keepstate's records: ${replay.error ? `ERROR ${replay.error}` : `${replay.median.toFixed(1)} ms`}`);
            }
          }
          // keepstate's store after those 20 commits (retained versions, packs
          // not yet compacted): restore as an app finds it after a session.
          if (id === 'keepstate' && doRestore) {
            restore[mib].keepstateAfterCommits = await guard(`restore keepstate after commits ${mib} MiB`, () =>
              measureRestore(h, id, { name, records, bytes }));
            const c = restore[mib].keepstateAfterCommits;
            log(`restore ${mib} MiB keepstate after the commit runs: ${c.error ? `ERROR ${c.error}` : `${c.median.toFixed(1)} ms`}`);
          }
        }),
      ).then(fail(id, 'commit'));
      (commit[mib].wallMs ??= {})[id] = Date.now() - t0;
    }
    // Restore: a fresh profile holding the state as written once.
    for (const id of doRestore ? RESTORES : []) {
      if (!wanted(id)) continue;
      const t0 = Date.now();
      await guard(`restore ${id} ${mib} MiB`, () =>
        withPage(async (h) => {
          const name = `restore-${mib}`;
          if (id === 'raw') await h.run('raw', 'restoreSetup', { name, bytes });
          else await setup(h, id, name);
          restore[mib][id] = await guard(`restore ${id} ${mib} MiB`, () => measureRestore(h, id, { name, records, bytes }));
          const c = restore[mib][id];
          log(`restore ${mib} MiB ${id}: ${c.error ? `ERROR ${c.error}` : `${c.median.toFixed(1)} ms`}`);
        }),
      ).then(fail(id, 'restore'));
      (restore[mib].wallMs ??= {})[id] = Date.now() - t0;
    }
  }
  return { commit: doCommit ? commit : undefined, restore: doRestore ? restore : undefined };
}

// ---------------------------------------------------------------------------
// 4. fibers

async function fibersWorkload() {
  return withPage(async (h) => {
    const ks = await measure(() => h.run('fibers', 'keepstate'), 'yieldsPerSecond');
    const spawn = await measure(() => h.run('fibers', 'keepstate'), 'spawn1MSeconds');
    const asy = await guard('asyncify', () => measure(() => h.run('fibers', 'asyncify'), 'yieldsPerSecond'));
    return { keepstateYields: ks, keepstateSpawn1M: spawn, asyncifyYields: asy };
  });
}

// ---------------------------------------------------------------------------
// Tables, targets, charts

// A failed figure's cell says why (shortened; the Errors table and the JSON
// hold the whole message).
const fmtErr = (e) => {
  const m = e.replace(/\s+/g, ' ').replace(/^[\w-]+\.\w+: (page\.evaluate: )?/, '');
  return `error: ${m.length > 60 ? `${m.slice(0, 59)}…` : m}`;
};
const fmtMs = (c) =>
  c?.error ? fmtErr(c.error) : c ? `${c.median < 10 ? c.median.toFixed(2) : c.median.toFixed(0)} ms${c.runs.length < RUNS ? ` [${c.runs.length} run${c.runs.length > 1 ? 's' : ''}]` : ''}` : '–';
const fmtX = (x) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(2) : x.toFixed(0)}x` : '–');
const fmtBytes = (b) => (b >= 1048576 ? `${(b / 1048576).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);
const int = (n) => Math.round(n).toLocaleString('en-US');

function table(title, header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [`\n### ${title}\n`, line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Issue 17: keepstate's JS API against a JS Map, per operation, with MB/s of the values moved and the targets. */
function userSeat(tx, out, target) {
  const api = tx.api ?? {};
  const ks = api.keepstate, map = api.map;
  const ok = (c) => c && !c.error;
  const mbs = (perSecond, bytes) => `${(perSecond * bytes / 1e6).toFixed(0)} MB/s`;
  const rows = [];
  const row = (what, k, m, bytes) => {
    rows.push([what, k === undefined ? '–' : `${int(k)}/s`, k === undefined ? '–' : mbs(k, bytes),
      m === undefined ? '–' : `${int(m)}/s`, m === undefined ? '–' : mbs(m, bytes), k !== undefined && m !== undefined ? fmtX(k / m) : '–']);
  };
  const vb = (ok(ks) ? ks : map)?.valueBytes ?? API_VALUE_BYTES;
  const n = (ok(ks) ? ks : map)?.keys ?? API_KEYS;
  if (ok(ks) || ok(map)) {
    row(`put of ${int(n)} new keys, ${vb} B values (Map: set(key, value.slice()))`, ks?.put?.median, map?.put?.median, vb);
    row(`get of those keys (keepstate returns a copy; Map: get(key))`, ks?.get?.median, map?.get?.median, vb);
  }
  const kt = tx['keepstate-js'], mt = tx.map;
  // A transfer reads two account records and writes two (FlatBuffers, recordBytes each in keepstate).
  const recordBytes = kt?.details?.[0]?.recordBytes;
  if (ok(kt) || ok(mt)) row(`transaction(): the ledger transfer (2 get + 2 put of ${recordBytes ?? '?'} B records)`, ok(kt) ? kt.median : undefined, ok(mt) ? mt.median : undefined, 4 * (recordBytes ?? 0));
  const ka = tx['keepstate-abi'];
  if (ok(ka)) row('  the same transfer straight on the C ABI (attribution: no Store/Access layer)', ka.median, ok(mt) ? mt.median : undefined, 4 * (recordBytes ?? 0));
  out.push(table(`From a user's seat: keepstate's JS API against a JS Map (ops/s; MB/s of the values moved; ratio keepstate / Map)`,
    ['operation', 'keepstate', 'keepstate MB/s', 'JS Map', 'Map MB/s', 'keepstate / Map'], rows));
  for (const [id, c] of Object.entries(api)) if (c?.error) out.push(`api ${id}: ${fmtErr(c.error)}`);
  if (ok(kt)) target('store.transaction() transfer from JS >= 300,000 txns/s (issue 17)', kt.median >= 3e5, `${int(kt.median)} txns/s${ok(mt) ? ` (${fmtX(kt.median / mt.median)} of the Map's ${int(mt.median)})` : ''}`);
  if (ok(ks) && ok(map)) target('store.put >= Map.set(key, value.slice()) (issue 17)', ks.put.median >= map.put.median, `${int(ks.put.median)}/s vs ${int(map.put.median)}/s = ${fmtX(ks.put.median / map.put.median)}`);
  if (ok(ks)) target('store.get >= 1,000,000/s (issue 17)', ks.get.median >= 1e6, `${int(ks.get.median)}/s${ok(map) ? ` (Map.get ${int(map.get.median)}/s)` : ''}`);
}

function report(results) {
  const out = [];
  const targets = [];
  const target = (name, pass, measured) => targets.push({ name, pass, measured });
  const tx = results.transactions;
  if (tx) {
    const base = tx['keepstate-fibers']?.median;
    out.push(table('Transactions: the ledger transfer over 1,000,000 accounts (txns/s, higher is better)',
      ['contender', 'txns/s', 'vs keepstate fibers', 'transfers per run'],
      TX_CONTENDERS.filter(([id]) => tx[id]).map(([id, label]) => {
        const c = tx[id];
        return [label, c?.error ? fmtErr(c.error) : int(c.median), c?.error ? '–' : fmtX(c.median / base), c?.transfersPerRun ? int(c.transfersPerRun) : '–'];
      })));
    if (base) {
      const others = TX_CONTENDERS.filter(([id]) => id !== 'keepstate-fibers' && tx[id] && !tx[id].error);
      const best = others.reduce((a, [id]) => (tx[id].median > (a?.v ?? 0) ? { id, v: tx[id].median } : a), undefined);
      target('transfers >= 1,000,000 txns/s through C++ fibers', base >= 1e6, `${int(base)} txns/s`);
      target('transfers ahead of every contender', !best || base > best.v, best ? `fastest other: ${best.id} ${int(best.v)} txns/s (${fmtX(base / best.v)} of it)` : '');
    }
    userSeat(tx, out, target);
  }
  const commit = results.commit;
  if (commit) {
    const rows = [];
    const vsKs = (c, ks) => (c && !c.error ? `${fmtMs(c)} (${fmtX(c.median / ks)})` : fmtMs(c));
    for (const mib of SIZES_MIB) {
      const records = (mib << 20) / RECORD;
      for (const [change, label, countOf] of CHANGES) {
        const cells = commit[mib]?.[change] ?? {};
        const ks = cells.keepstate?.median;
        const ksWrote = cells.keepstate?.details
          ? `${fmtBytes(median(cells.keepstate.details.map((x) => x.bytesWritten)))} in ${cells.keepstate.details.at(-1).records ?? '?'} records` : '–';
        rows.push([`${mib} MiB`, `${label} (${fmtBytes(countOf(records) * RECORD)})`, fmtMs(cells.keepstate), ksWrote,
          ...COMMIT_CONTENDERS.filter(([id]) => id !== 'keepstate').map(([id]) => vsKs(cells[id], ks)),
          vsKs(cells.rawKeepstateRecords, ks)]);
      }
    }
    out.push(table('Commit latency, durability strict (median ms; in brackets: time / keepstate time, > 1x means slower than keepstate)',
      ['state', 'changed (bytes)', 'keepstate commit()', 'keepstate wrote', ...COMMIT_CONTENDERS.filter(([id]) => id !== 'keepstate').map(([, l]) => l),
        "raw put of keepstate's own records"], rows));
    out.push(`
What each column writes to IndexedDB (one readwrite transaction each, durability strict):
- keepstate commit(): every 4 KiB B-tree page the change touched, packed into records of up to 8 MiB, plus its
  manifest and head (docs/snapshot-format.md); "keepstate wrote" is their total and record count.
  Three 1 KiB records fit a 4 KiB page (a cell is 1040 bytes plus an 8-byte slot), so a full commit writes
  about 1.34x the state (bench/browser/README.md).
- raw limit: only the changed records' bytes (1 KiB each, random), back to back in values of ${RAW_RECORD_MIB} MiB.
- IDBFS: the whole state file, whatever changed (IDBFS stores a changed file as one record).
- wa-sqlite: the changed ${WA_SQLITE_PAGE_SIZE / 1024} KiB database pages, one record each.
- Dexie: the changed records, one IndexedDB record (object) each.
- raw put of keepstate's own records: the very records keepstate's commit put (same bytes, sizes and keys), raw,
  in its page; not its head check or its deletes of superseded records.`);
    const big = SIZES_MIB.at(-1);
    const small = commit[big]?.['1KiB'] ?? {};
    if (small.keepstate && !small.keepstate.error) {
      const ks = small.keepstate.median;
      if (small.raw && !small.raw.error) target(`commit of 1 KiB changed in ${big} MiB <= 2x raw IndexedDB put of the changed bytes`, ks <= 2 * small.raw.median, `${ks.toFixed(1)} ms vs ${small.raw.median.toFixed(1)} ms = ${fmtX(ks / small.raw.median)}`);
      if (small.idbfs) target(`commit of 1 KiB changed in ${big} MiB >= 10x faster than IDBFS syncfs`, !small.idbfs.error && small.idbfs.median >= 10 * ks, small.idbfs.error ? `IDBFS failed: ${small.idbfs.error.slice(0, 80)}` : `IDBFS ${small.idbfs.median.toFixed(0)} ms = ${fmtX(small.idbfs.median / ks)} keepstate`);
    }
    for (const mib of SIZES_MIB) {
      const full = commit[mib]?.['100pct'] ?? {};
      if (full.keepstate && !full.keepstate.error && full.raw && !full.raw.error) {
        const frac = full.raw.median / full.keepstate.median;
        const bw = (ms) => ((mib / (ms / 1000))).toFixed(0);
        const own = full.rawKeepstateRecords;
        const ownText = own && !own.error
          ? `; on the bytes it writes, ${(100 * own.median / full.keepstate.median).toFixed(0)} % of a raw put of its own records (${fmtBytes(own.details.at(-1).bytesWritten)} in ${own.median.toFixed(0)} ms)` : '';
        target(`full-state commit (${mib} MiB) >= 70 % of raw IndexedDB write bandwidth`, frac >= 0.7,
          `${(frac * 100).toFixed(0)} % (keepstate ${bw(full.keepstate.median)} MiB/s of state, raw ${bw(full.raw.median)} MiB/s)${ownText}`);
      }
    }
  }
  const restore = results.restore;
  if (restore) {
    const rows = SIZES_MIB.map((mib) => {
      const c = restore[mib] ?? {};
      const ks = c.keepstate?.median;
      const d = c.keepstate?.details ?? [];
      const med = (k) => (d.length ? `${median(d.map((x) => x[k])).toFixed(0)} ms` : '–');
      const stored = d.length ? `${(d.at(-1).storedBytes / 1048576).toFixed(1)} MiB / ${d.at(-1).storedRecords}` : '–';
      const after = c.keepstateAfterCommits;
      const afterText = after && !after.error
        ? `${fmtMs(after)} (${(after.details.at(-1).storedBytes / 1048576).toFixed(0)} MiB stored)` : fmtMs(after);
      const nocopy = c['keepstate-nocopy'];
      return [`${mib} MiB`, fmtMs(c.keepstate), nocopy && !nocopy.error ? `${fmtMs(nocopy)} (${fmtX(nocopy.median / ks)})` : fmtMs(nocopy),
        med('reloadMs'), med('ownReadMs'), stored, afterText, c.raw && !c.raw.error ? `${fmtMs(c.raw)} (${fmtX(c.raw.median / ks)})` : fmtMs(c.raw),
        c.idbfs && !c.idbfs.error ? `${fmtMs(c.idbfs)} (${fmtX(c.idbfs.median / ks)})` : fmtMs(c.idbfs)];
    });
    out.push(table('Restore after a page reload until the state is verified and usable (median ms; in brackets: time / keepstate time)',
      ['state', 'keepstate openStore (instantiate + restore + verify)', 'copy: false (no OPFS copy)', 'of which: reload() alone', 'IndexedDB read of keepstate\'s own records', 'keepstate stored bytes / records', 'keepstate after the 20 commit runs', 'raw IndexedDB read (limit)', 'IDBFS syncfs(true) + read'], rows));
    for (const mib of SIZES_MIB) {
      const c = restore[mib] ?? {};
      if (c.keepstate && !c.keepstate.error && c.raw && !c.raw.error) {
        target(`restore of ${mib} MiB within 1.5x of the raw IndexedDB read`, c.keepstate.median <= 1.5 * c.raw.median,
          `${c.keepstate.median.toFixed(0)} ms vs ${c.raw.median.toFixed(0)} ms = ${fmtX(c.keepstate.median / c.raw.median)}`);
      }
    }
  }
  const f = results.fibers;
  if (f && !f.error) {
    const ks = f.keepstateYields.median;
    const asy = f.asyncifyYields?.median;
    out.push(table(`Fibers in ${chromiumVersion} (median of runs; each keepstate run is itself a median of 3)`,
      ['measure', 'keepstate (C++20 coroutines)', 'emscripten_fiber_swap (Asyncify)', 'keepstate / Asyncify'],
      [
        ['yield ring, 1000 fibers', `${(ks / 1e6).toFixed(1)} M yields/s`, asy ? `${(asy / 1e6).toFixed(2)} M yields/s` : fmtMs(f.asyncifyYields), asy ? fmtX(ks / asy) : '–'],
        ['spawn + complete 1,000,000 fibers (warm)', `${(f.keepstateSpawn1M.median * 1000).toFixed(0)} ms`, 'not run: 20 KiB of stacks per Asyncify fiber (1M = 20 GiB)', '–'],
      ]));
  }
  // Every failed figure, with what the browser said (never only "error").
  const errors = [];
  const walk = (path, v) => {
    if (!v || typeof v !== 'object') return;
    if (typeof v.error === 'string') errors.push([path.join(' / '), v.error.replace(/\s+/g, ' ').slice(0, 400)]);
    else for (const [k, x] of Object.entries(v)) walk([...path, k], x);
  };
  walk([], results);
  if (errors.length) out.push(table('Errors', ['figure', 'error'], errors));
  if (targets.length) {
    out.push(table(`Targets (issues 7 and 17${quick ? '; --quick run: largest state 64 MiB' : ''})`, ['target', 'result', 'measured'],
      targets.map((t) => [t.name, t.pass ? 'PASS' : 'MISS', t.measured])));
  }
  return { text: out.join('\n'), targets };
}

const COLORS = { keepstate: '#1f77b4', 'keepstate-nocopy': '#9ecae1', 'keepstate-fibers': '#1f77b4', 'keepstate-js': '#6baed6', 'keepstate-abi': '#c6dbef', raw: '#7f7f7f', idbfs: '#d62728', 'wa-sqlite': '#2ca02c', dexie: '#ff7f0e', map: '#9467bd', asyncify: '#d62728' };

async function charts(results, suffix) {
  const files = [];
  const write = async (name, svg) => {
    const file = join(resultsDir, `browser-${name}${suffix}.svg`);
    await writeFile(file, svg);
    files.push(file);
  };
  if (results.transactions) {
    await write('transactions', barChart({
      title: 'Ledger transfers over 1M accounts (txns/s, higher is better, log scale)', unit: 'txns/s', log: true,
      groups: [{ label: '', bars: TX_CONTENDERS.filter(([id]) => results.transactions[id]?.median).map(([id, label]) => ({ name: label, value: results.transactions[id].median, color: COLORS[id] })) }],
    }));
  }
  if (results.commit) {
    await write('commit', barChart({
      title: 'Commit latency, durability strict (ms, lower is better, log scale)', unit: 'ms', log: true,
      groups: SIZES_MIB.flatMap((mib) => CHANGES.map(([change, label]) => ({
        label: `${mib} MiB, ${label}`,
        bars: COMMIT_CONTENDERS.map(([id, name]) => ({ name, value: results.commit[mib]?.[change]?.[id]?.median, color: COLORS[id] })),
      }))),
    }));
  }
  if (results.restore) {
    await write('restore', barChart({
      title: 'Restore after reload until verified and usable (ms, lower is better)', unit: 'ms', log: false,
      groups: SIZES_MIB.map((mib) => ({ label: `${mib} MiB`, bars: [['keepstate', 'keepstate openStore'], ['raw', 'raw IndexedDB read (limit)'], ['idbfs', 'IDBFS syncfs(true)']].map(([id, name]) => ({ name, value: results.restore[mib]?.[id]?.median, color: COLORS[id] })) })),
    }));
  }
  if (results.fibers && !results.fibers.error) {
    await write('fibers', barChart({
      title: `Fiber yield ring in ${chromiumVersion} (yields/s, higher is better, log scale)`, unit: 'yields/s', log: true,
      groups: [{ label: '', bars: [
        { name: 'keepstate (C++20 coroutines)', value: results.fibers.keepstateYields.median, color: COLORS.keepstate },
        { name: 'emscripten_fiber_swap (Asyncify)', value: results.fibers.asyncifyYields?.median, color: COLORS.asyncify },
      ] }],
    }));
  }
  return files;
}

function machine() {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo }).toString().trim();
    // The build is of the working tree: say so when it has uncommitted changes.
    if (execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repo }).toString().trim()) commit += ' + uncommitted changes';
  } catch {}
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), os: `${os.type()} ${os.release()}`, node: process.version, commit };
}

async function main() {
  for (const f of ['js-bindings/dist/index.js', 'build/wasm-release/examples/ledger/ledger.wasm', 'build/wasm-release/bench/browser/bench_browser_idbfs.wasm']) {
    await access(join(repo, f)).catch(() => {
      throw new Error(`${f} is missing: run \`make bench-browser\` (it builds the wasm modules and the package first)`);
    });
  }
  await mkdir(resultsDir, { recursive: true });
  const started = Date.now();
  const loadStart = load();
  log(`bench/browser: ${quick ? '--quick, ' : ''}${RUNS} runs per figure, states ${SIZES_MIB.join('/')} MiB; load average ${loadStart}`);
  server = await startServer({ port: 0 });
  const results = {};
  const workloadMinutes = {};
  const timed = async (name, fn) => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      workloadMinutes[name] = +((Date.now() - t0) / 60000).toFixed(1);
      log(`${name}: ${workloadMinutes[name]} min`);
    }
  };
  try {
    if (ONLY.includes('transactions')) results.transactions = await timed('transactions', transactionsWorkload);
    if (ONLY.includes('commit') || ONLY.includes('restore')) {
      Object.assign(results, await timed('commit+restore', () => commitAndRestoreWorkload(ONLY.includes('commit'), ONLY.includes('restore'))));
    }
    if (ONLY.includes('fibers')) results.fibers = await timed('fibers', () => guard('fibers', fibersWorkload));
  } finally {
    await server.close();
  }
  const meta = {
    quick, partial: PARTIAL, runs: RUNS, waSqlitePageSize: WA_SQLITE_PAGE_SIZE, rawRecordMiB: RAW_RECORD_MIB, statesMiB: SIZES_MIB, accounts: ACCOUNTS, recordBytes: RECORD, batch: BATCH,
    browser: chromiumVersion, machine: machine(), loadAverageStart: loadStart, loadAverageEnd: load(),
    minutes: +((Date.now() - started) / 60000).toFixed(1), workloadMinutes, when: new Date().toISOString(),
    command: `node bench/browser/run.mjs ${argv.join(' ')}`.trim(),
  };
  const { text, targets } = report(results);
  const suffix = `${BROWSER === 'chromium' ? '' : `-${BROWSER}`}${quick ? '-quick' : ''}${PARTIAL ? '-partial' : ''}`;
  const json = join(resultsDir, `browser${suffix}.json`);
  await writeFile(json, JSON.stringify({ meta, targets, results }, null, 2) + '\n');
  const svgs = await charts(results, suffix);
  const m = meta.machine;
  console.log(`\n## keepstate in ${chromiumVersion} (headless, on-disk profile, durability strict)\n`);
  const make = argv.length ? `make bench-browser BENCH_ARGS='${argv.join(' ')}'` : 'make bench-browser';
  console.log(`Command: \`${make}\` (${meta.command}); ${RUNS} runs per figure (median); ` +
    `${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, commit ${m.commit}; load average ${loadStart} at start, ${meta.loadAverageEnd} at end; ${meta.minutes} min.`);
  console.log(text);
  console.log(`\nJSON: ${json}\ncharts: ${svgs.join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
