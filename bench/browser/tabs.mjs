// bench/browser/tabs.mjs: what sharing a store between tabs costs, measured
// from a user's seat in headless Chromium (Debian's, one on-disk persistent
// profile, two or three tabs of one origin) — issue 14's figures:
//   follow   a 1 KiB change committed in tab A reaches tab B's watch
//            listener: from A's commit() resolving to B's listener (median),
//            against B's full reload() of the same state;
//   rebase   100 pending transactions replayed onto another tab's commit:
//            the commit that rebases, minus the same commit without a
//            rebase, minus running the 100 transactions once more;
//   watch    put of 1 KiB values with 10 watchers that match none of them,
//            against the same puts with no watcher.
//
//   node bench/browser/tabs.mjs [--quick] [--browser chromium|firefox] [--runs N] [--sizes 16,64]
//   make bench-browser (runs it after run.mjs)
//
// States are N MiB of 1 KiB random records. Prints a table and writes
// bench/results/browser-tabs.json (browser-tabs-partial.json for --runs/--sizes).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../e2e/server.mjs';
import { browserOption, median, openBrowser, option } from './launch.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name) => option(name, argv);
const quick = argv.includes('--quick');
const RUNS = Number(opt('--runs') ?? (quick ? 5 : 9));
const SIZES_MIB = opt('--sizes')?.split(',').map(Number) ?? (quick ? [16, 64] : [64, 256]);
const PARTIAL = ['--runs', '--sizes'].some((o) => argv.includes(o));
const BROWSER = browserOption(argv);
let browserVersion = BROWSER;

// Runs in every tab: the package, one store, and helpers on window.t.
const TAB = () => {
  window.t = {
    async init(url) {
      this.ks = await import(url);
      this.heard = [];
    },
    async open(name, options) {
      this.store = await this.ks.openStore(name, { autosave: false, ...options });
      return this.store.version;
    },
    random(bytes) {
      const v = new Uint8Array(bytes);
      crypto.getRandomValues(v);
      return v;
    },
    async fill(mib) {
      const n = mib * 1024;
      const value = new Uint8Array(1024);
      for (let i = 0; i < n; ++i) {
        if ((i & 1023) === 0) crypto.getRandomValues(value);
        value[i & 1023] ^= 0xa5; // every record distinct
        this.store.put(`r/${String(i).padStart(8, '0')}`, value);
      }
      return (await this.store.commit()).version;
    },
    now: () => performance.timeOrigin + performance.now(),
    watchProbe() {
      this.store.watch({ key: 'probe' }, () => this.heard.push(this.now()));
    },
    async commitProbe() {
      this.store.put('probe', this.random(1024));
      const started = this.now();
      const { version } = await this.store.commit();
      return { started, acked: this.now(), version };
    },
    async reload() {
      const t0 = performance.now();
      await this.store.reload();
      return performance.now() - t0;
    },
    transactions(n, tag) {
      const t0 = performance.now();
      for (let i = 0; i < n; ++i) {
        this.store.transaction((tx) => {
          tx.putJSON('counter', (tx.getJSON('counter') ?? 0) + 1);
          tx.put(`own/${tag}/${i}`, 'x');
        });
      }
      return performance.now() - t0;
    },
    async commitTimed() {
      let replay;
      const stop = this.store.on('rebase', (e) => (replay = e.ms));
      const t0 = performance.now();
      const r = await this.store.commit();
      stop();
      return { ms: performance.now() - t0, version: r.version, replayMs: replay };
    },
    async puts(n, watchers) {
      const stops = [];
      for (let i = 0; i < watchers; ++i) stops.push(this.store.watch({ prefix: `nomatch/${i}/` }, () => {}));
      const value = this.random(1024);
      const t0 = performance.now();
      for (let i = 0; i < n; ++i) this.store.put(`p/${i}`, value);
      await new Promise((r) => setTimeout(r, 0)); // the watchers' delivery task runs
      const ms = performance.now() - t0;
      for (const stop of stops) stop();
      return ms;
    },
  };
};

async function tab(context, url) {
  const page = await context.newPage();
  await page.goto(url);
  await page.evaluate(TAB);
  await page.evaluate(() => window.t.init('/js-bindings/dist/index.js'));
  return page;
}

async function measureSize(server, mib) {
  const profile = await mkdtemp(join(os.tmpdir(), 'keepstate-tabs-'));
  const context = await openBrowser(BROWSER, profile);
  browserVersion = context.version;
  try {
    const url = `${server.url}/e2e/support/web/harness.html?mode=page`;
    const a = await tab(context, url);
    const b = await tab(context, url);
    const name = `tabs-${mib}`;
    await a.evaluate((n) => window.t.open(n, { follow: false }), name);
    await a.evaluate((m) => window.t.fill(m), mib);
    await b.evaluate((n) => window.t.open(n, {}), name);
    await b.evaluate(() => window.t.watchProbe());
    const follow = [];
    const fromStart = [];
    for (let run = 0; run < RUNS + 1; ++run) {
      const { started, acked } = await a.evaluate(() => window.t.commitProbe());
      await b.waitForFunction((k) => window.t.heard.length > k, run, { timeout: 60_000 });
      const heard = await b.evaluate((k) => window.t.heard[k], run);
      if (run === 0) continue; // warm-up: the first catch-up allocates its memory
      follow.push(heard - acked);
      fromStart.push(heard - started);
    }
    const reload = [];
    for (let run = 0; run < 3; ++run) reload.push(await b.evaluate(() => window.t.reload()));

    // Rebase: tab C (not following) runs 100 transactions, A commits, C commits.
    const c = await tab(context, url);
    await c.evaluate((n) => window.t.open(n, { follow: false }), name);
    const rebase = [];
    for (let run = 0; run < RUNS; ++run) {
      await c.evaluate(() => window.t.store.reload());
      const plainRun = await c.evaluate((r) => window.t.transactions(100, `plain${r}`), run);
      const plain = await c.evaluate(() => window.t.commitTimed());
      const run2 = await c.evaluate((r) => window.t.transactions(100, `rebased${r}`), run);
      await a.evaluate(async () => {
        await window.t.store.reload();
        return window.t.commitProbe();
      });
      const rebased = await c.evaluate(() => window.t.commitTimed());
      // Beyond running them: the replay (swap, log, watchers) less the transactions' own time.
      // The catch-up's read of the changed pages is the follow figure's work, shown apart.
      rebase.push({ plainCommit: plain.ms, rebasedCommit: rebased.ms, run: run2, replay: rebased.replayMs, beyond: rebased.replayMs - run2,
        catchUp: rebased.ms - plain.ms - rebased.replayMs });
    }
    // put with 10 watchers that match nothing, against none (in A, alternating).
    const puts = { none: [], watched: [] };
    for (let run = 0; run < RUNS; ++run) {
      puts.none.push(await a.evaluate(() => window.t.puts(100_000, 0)));
      puts.watched.push(await a.evaluate(() => window.t.puts(100_000, 10)));
    }
    return {
      mib,
      followMs: median(follow),
      followFromCommitStartMs: median(fromStart),
      followRunsMs: follow,
      reloadMs: median(reload),
      reloadRunsMs: reload,
      rebaseBeyondMs: median(rebase.map((r) => r.beyond)),
      rebaseRunMs: median(rebase.map((r) => r.run)),
      rebaseCatchUpMs: median(rebase.map((r) => r.catchUp)),
      rebaseRuns: rebase,
      putNoWatcherMs: median(puts.none),
      putTenWatchersMs: median(puts.watched),
      putRuns: puts,
    };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

const server = await startServer({ port: 0, root: repo });
const results = [];
try {
  for (const mib of SIZES_MIB) {
    process.stderr.write(`tabs: ${mib} MiB...\n`);
    results.push(await measureSize(server, mib));
  }
} finally {
  await server.close();
}
const f = (x) => x.toFixed(1);
const pass = (ok) => (ok ? 'PASS' : 'MISS');
console.log(`\nTabs (headless ${browserVersion}, ${RUNS} runs, medians; node bench/browser/tabs.mjs${quick ? ' --quick' : ''})`);
console.log('| state | 1 KiB change: A commit acked -> B watch listener | (from A commit start) | B full reload() | ratio | target <= 10 ms |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  console.log(`| ${r.mib} MiB | ${f(r.followMs)} ms | ${f(r.followFromCommitStartMs)} ms | ${f(r.reloadMs)} ms | ${(r.reloadMs / r.followMs).toFixed(1)}x faster | ${pass(r.followMs <= 10)} |`);
}
console.log('\n| state | rebase of 100 pending transactions, beyond running them (100 txns: run once) | target <= 2 ms | the commit’s catch-up besides | put 100k x 1 KiB: no watcher | 10 watchers, none matching | overhead | target <= 10 % |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const overhead = (r.putTenWatchersMs / r.putNoWatcherMs - 1) * 100;
  console.log(`| ${r.mib} MiB | ${f(r.rebaseBeyondMs)} ms (${f(r.rebaseRunMs)} ms) | ${pass(r.rebaseBeyondMs <= 2)} | ${f(r.rebaseCatchUpMs)} ms | ${f(r.putNoWatcherMs)} ms | ${f(r.putTenWatchersMs)} ms | ${overhead.toFixed(1)} % | ${pass(overhead <= 10)} |`);
}
await mkdir(join(repo, 'bench/results'), { recursive: true });
const out = join(repo, 'bench/results', `browser-tabs${BROWSER === 'chromium' ? '' : `-${BROWSER}`}${PARTIAL ? '-partial' : quick ? '-quick' : ''}.json`);
await writeFile(out, JSON.stringify({ browser: browserVersion, cpu: os.cpus()[0]?.model, cores: os.cpus().length, runs: RUNS, results }, null, 2));
console.log(`\n${out}`);
