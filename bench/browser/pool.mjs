// bench/browser/pool.mjs: the pool of read replicas (issue 25) from a
// user's seat, in headless Chromium (Debian's, one on-disk profile). The
// heavy query is the ledger's C++ audit (examples/ledger: every account
// read and summed) over 1,000,000 accounts; in the same run:
//   main thread  a stream of audits on the page's engine against the same
//                stream on the pool: long tasks (> 50 ms) on the page's
//                main thread, their count and the longest;
//   throughput   audits per second with 2 replicas against 1;
//   step         each answer's queue wait when the load steps from 1 to
//                10 queries per second (a JS report sized to 150 ms on a
//                replica, so 10/s is 1.5 replicas' work): the elastic
//                policy (its defaults, max 2) against a fixed pool of 1;
//   cold start   a replica's start (module instance + restore) on a 64 MiB
//                state of 1 KiB records, and its follow after a 1 KiB commit;
//   writer       the page's transfers per second (batches of 1,000, each
//                committed) while the pool runs audits, against an idle pool.
//
//   node bench/browser/pool.mjs [--quick] [--browser chromium|firefox] [--accounts N] [--runs N] [--only main,throughput,...]
//   make bench-browser (runs it after the other scripts)
//
// Prints a table with PASS/MISS against issue 25's targets and writes
// bench/results/browser-pool.json (-quick, -firefox, -partial suffixes).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROUTES, startServer } from '../../e2e/server.mjs';
import { browserOption, loadAverage as load, log, median, openBrowser, option } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name) => option(name, argv);
const quick = argv.includes('--quick');
const ACCOUNTS = Number(opt('--accounts') ?? (quick ? 200_000 : 1_000_000));
const RUNS = Number(opt('--runs') ?? (quick ? 3 : 5));
const STREAM = quick ? 6 : 10; // audits per stream
const STATE_MIB = quick ? 16 : 64; // the cold start's state
const STEP_QUERY_MS = 150; // the step's query: 10/s of it is 1.5 replicas' work
// --only main,throughput,step,writer,cold: some figures (development).
const ONLY = opt('--only')?.split(',');
const wanted = (figure) => !ONLY || ONLY.includes(figure);
const PARTIAL = ['--accounts', '--runs', '--only'].some((o) => argv.includes(o));
const BROWSER = browserOption(argv);
const TARGETS = { longestTaskMs: 50, throughputRatio: 1.7, followMs: 10, writerRatio: 0.8 };

// The pages, and the ledger's account decoder that JS queries share with the pool's tests.
ROUTES.unshift(['/bench/', join(repo, 'bench/browser/pages')], ['/test-support/', join(repo, 'js-bindings/test/support')]);

const loadStart = load();
const server = await startServer({ port: 0 });
const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-pool-'));
const browser = await openBrowser(BROWSER, profile);
const r = { browser: browser.version, accounts: ACCOUNTS, runs: RUNS, stream: STREAM, stateMib: STATE_MIB, cores: os.cpus().length };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(`${server.url}bench/pool.html`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
  const call = (name, ...args) =>
    page.evaluate(([n, a]) => window.poolBench[n](...a), [name, args]).catch((e) => {
      throw new Error(`${name}: ${e.message.split('\n')[0]}`);
    });

  log(`ledger of ${ACCOUNTS} accounts...`);
  r.ledger = await call('open', 'pool-ledger', ACCOUNTS);
  const audits = [];
  for (let i = 0; i < 3; ++i) audits.push(await call('auditOnPage'));
  if (!audits.every((a) => a.report.ok)) throw new Error(`the ledger's audit fails: ${JSON.stringify(audits[0].report)}`);
  r.auditOnPageMs = median(audits.map((a) => a.ms));
  log(`one audit on the page: ${r.auditOnPageMs.toFixed(1)} ms`);

  if (wanted('main')) {
    // Main thread: the stream on the page's engine, then on the pool (its defaults, one replica up).
    r.mainThread = { page: [], pool: [] };
    for (let run = 0; run < RUNS; ++run) {
      r.mainThread.page.push(await call('stream', 'page', STREAM));
      await call('openPool', { min: 1 });
      r.mainThread.pool.push(await call('stream', 'pool', STREAM));
      await call('closePool');
    }
    log('main thread done');
  }

  if (wanted('throughput')) {
    // Throughput: twice the stream, all submitted at once, to 1 replica and to 2 (interleaved).
    r.throughput = { one: [], two: [] };
    for (let run = 0; run < RUNS; ++run) {
      await call('openPool', { min: 1, max: 1 });
      r.throughput.one.push(await call('stream', 'pool', STREAM * 2));
      await call('openPool', { min: 2, max: 2 });
      r.throughput.two.push(await call('stream', 'pool', STREAM * 2));
    }
    await call('closePool');
    log('throughput done');
  }

  if (wanted('step')) {
    // Step: 1 query/s for 5 s, then 10/s for 10 s; a fixed pool of 1 against elastic (defaults, max 2).
    const low = { qps: 1, ms: 5000 };
    const high = { qps: 10, ms: quick ? 5000 : 10_000 };
    // The query: a JS report sized to cost STEP_QUERY_MS on a replica, so that 10/s is more
    // than one replica can answer (1.5 replicas' work) and less than two can.
    await call('openPool', { min: 1, max: 1 });
    const sized = await call('calibrate', STEP_QUERY_MS, Math.min(ACCOUNTS, 100_000));
    const query = { accounts: Math.min(ACCOUNTS, sized.accounts), top: 10 };
    r.step = { low, high, query, queryTargetMs: STEP_QUERY_MS, probeMs: sized.probeMs };
    r.step.fixed = await call('step', low, high, query);
    await call('openPool', { max: 2 });
    r.step.elastic = await call('step', low, high, query);
    await call('closePool');
    log('step done');
  }

  if (wanted('writer')) {
    // The writer with the pool busy (one replica: the default max on 2 cores) against idle.
    r.writer = { idle: [], busy: [] };
    await call('openPool', { min: 1 });
    for (let run = 0; run < RUNS; ++run) {
      r.writer.idle.push(await call('writer', 3000, 1000, false, 1000 * run));
      r.writer.busy.push(await call('writer', 3000, 1000, true, 1000 * run + 500));
    }
    await call('closePool');
    log('writer done');
  }

  if (wanted('cold')) {
    // Cold start and follow on a state of 1 KiB records.
    log(`state of ${STATE_MIB} MiB...`);
    await call('openRecords', 'pool-records', STATE_MIB);
    r.coldStarts = await call('coldStarts', RUNS);
    await call('openPool', { min: 1 });
    r.follows = await call('follows', 20);
    await call('closePool');
  }
} finally {
  await browser.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}

// --- Report ------------------------------------------------------------------------------

const med = (xs, f) => median(xs.map(f));
const longest = (runs) => Math.max(...runs.map((x) => x.longTasks?.longestMs ?? x.timerGaps.longestMs));
const count = (runs) => med(runs, (x) => x.longTasks?.count ?? x.timerGaps.over50);
const f = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
const pass = (ok) => (ok ? 'PASS' : 'MISS');
const s = (r.summary = {});
const rows = [];
const streams = [...(r.mainThread?.page ?? []), ...(r.mainThread?.pool ?? []), ...(r.throughput?.one ?? []), ...(r.throughput?.two ?? [])];
s.answersMatchWriter = streams.every((x) => x.same);
if (r.mainThread) {
  const { page, pool } = r.mainThread;
  Object.assign(s, { longestTaskPageMs: longest(page), longTasksPage: count(page), longestTaskPoolMs: longest(pool), longTasksPool: count(pool) });
  const how = page[0].longTasks ? 'long tasks' : 'timer gaps > 50 ms';
  rows.push(`| main thread during ${STREAM} audits: ${how}, longest | ${f(s.longTasksPage, 0)}, ${f(s.longestTaskPageMs)} ms | ${f(s.longTasksPool, 0)}, ${f(s.longestTaskPoolMs)} ms | | pool ≤ ${TARGETS.longestTaskMs} ms | ${pass(s.longestTaskPoolMs <= TARGETS.longestTaskMs)} |`);
}
if (r.throughput) {
  s.auditsPerSecondOne = med(r.throughput.one, (x) => x.perSecond);
  s.auditsPerSecondTwo = med(r.throughput.two, (x) => x.perSecond);
  s.throughputRatio = s.auditsPerSecondTwo / s.auditsPerSecondOne;
  rows.push(`| audits per second (${STREAM * 2} at once) | ${f(s.auditsPerSecondOne, 2)} | ${f(s.auditsPerSecondTwo, 2)} | ${f(s.throughputRatio, 2)}x | ≥ ${TARGETS.throughputRatio}x | ${pass(s.throughputRatio >= TARGETS.throughputRatio)} |`);
}
if (r.step) {
  const { fixed, elastic } = r.step;
  Object.assign(s, { stepP95Fixed: fixed.high.p95Ms, stepP95Elastic: elastic.high.p95Ms });
  rows.push(`| queue wait at 10/s (after 1/s) of a ${f(STEP_QUERY_MS, 0)} ms query: p50 / p95 | fixed 1: ${f(fixed.high.p50Ms, 0)} / ${f(s.stepP95Fixed, 0)} ms | elastic: ${f(elastic.high.p50Ms, 0)} / ${f(s.stepP95Elastic, 0)} ms (peak ${elastic.peakReplicas}) | ${f(s.stepP95Fixed / s.stepP95Elastic, 1)}x | | |`);
}
if (r.writer) {
  Object.assign(s, { writerIdle: med(r.writer.idle, (x) => x.perSecond), writerBusy: med(r.writer.busy, (x) => x.perSecond) });
  s.writerRatio = s.writerBusy / s.writerIdle;
  rows.push(`| writer: transfers/s, pool idle vs auditing | ${f(s.writerIdle, 0)} | ${f(s.writerBusy, 0)} | ${f(s.writerRatio, 2)}x | ≥ ${TARGETS.writerRatio}x | ${pass(s.writerRatio >= TARGETS.writerRatio)} |`);
}
if (r.coldStarts) {
  Object.assign(s, {
    coldStartMs: med(r.coldStarts, (x) => x.coldStartMs),
    replicaBytes: r.coldStarts[0].replicaBytes,
    followMs: med(r.follows, (x) => x.followMs),
    followSeenMs: med(r.follows, (x) => x.seenMs),
  });
  rows.push(`| replica cold start, ${STATE_MIB} MiB state | | ${f(s.coldStartMs)} ms (${f(s.replicaBytes / 2 ** 20, 0)} MiB of wasm memory) | | | |`);
  rows.push(`| follow after a 1 KiB commit: catch-up / seen by the page | | ${f(s.followMs, 2)} / ${f(s.followSeenMs, 2)} ms | | ≤ ${TARGETS.followMs} ms | ${pass(s.followSeenMs <= TARGETS.followMs)} |`);
}
console.log(`\nPool of read replicas (headless ${r.browser}, ${r.cores} cores, ${ACCOUNTS.toLocaleString('en')} accounts, medians of ${RUNS} runs; node bench/browser/pool.mjs${quick ? ' --quick' : ''})`);
console.log(`one audit on the page's engine: ${f(r.auditOnPageMs)} ms; every answer of the pool equals the writer's audit: ${s.answersMatchWriter ? 'yes' : 'NO'}`);
console.log('| figure | on the page / 1 replica / idle | with the pool / 2 replicas / busy | ratio | target | |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
if (r.step) console.log(`elastic steps: ${r.step.elastic.steps.map((x) => `${x.at} ms ${x.direction} to ${x.replicas} (${x.reason})`).join('; ')}`);
console.log(`load average: ${loadStart} at start, ${load()} at end`);

await mkdir(join(repo, 'bench/results'), { recursive: true });
const suffix = `${BROWSER === 'chromium' ? '' : `-${BROWSER}`}${PARTIAL ? '-partial' : quick ? '-quick' : ''}`;
const file = join(repo, `bench/results/browser-pool${suffix}.json`);
await writeFile(file, JSON.stringify({ ...r, loadStart, loadEnd: load(), date: new Date().toISOString() }, null, 2));
console.log(`wrote ${file}`);
