// The page of bench/browser/pool.mjs: the C++ ledger (examples/ledger) as
// the page's store, and a pool of read replicas over it. Each function on
// window.poolBench is one measurement; the driver calls them in order.
import { openPool, openStore } from 'keepstate';
import { decodeAuditReport, Ledger, ledgerModule } from '/ledger/client.mjs';
import { INITIAL_BALANCE, percentile, recordBytes, recordKey, transfers } from './common.mjs';

const QUERIES = new URL('./pool-queries.mjs', import.meta.url).href;
const OPEN_CHUNK = 100_000;

let store = null;
let ledger = null;
let pool = null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * What the main thread could not do while `fn` ran: long tasks (> 50 ms) as
 * the browser reports them where it can (PerformanceObserver 'longtask':
 * Chromium), and, everywhere, the longest gap of a timer that asks to run
 * every 0 ms (a task that blocks the thread delays it by its length).
 */
async function onMainThread(fn) {
  const tasks = [];
  let observer = null;
  if (globalThis.PerformanceObserver?.supportedEntryTypes?.includes('longtask')) {
    observer = new PerformanceObserver((list) => tasks.push(...list.getEntries().map((e) => e.duration)));
    observer.observe({ type: 'longtask' });
  }
  let running = true;
  let last = performance.now();
  let longestGap = 0;
  let gapsOver50 = 0;
  const beat = () => {
    const now = performance.now();
    const gap = now - last;
    if (gap > longestGap) longestGap = gap;
    if (gap > 50) ++gapsOver50;
    last = now;
    if (running) setTimeout(beat, 0);
  };
  setTimeout(beat, 0);
  const t0 = performance.now();
  let value;
  try {
    value = await fn();
  } finally {
    running = false;
    await sleep(0);
    if (observer !== null) {
      tasks.push(...observer.takeRecords().map((e) => e.duration));
      observer.disconnect();
    }
  }
  return {
    ms: performance.now() - t0,
    longTasks: observer === null ? null : { count: tasks.length, longestMs: tasks.length === 0 ? 0 : Math.max(...tasks) },
    timerGaps: { over50: gapsOver50, longestMs: longestGap },
    value,
  };
}

window.poolBench = {
  /** The ledger store with `accounts` accounts (opened once per profile), committed. */
  async open(name, accounts) {
    store = await openStore(name, { module: ledgerModule, autosave: false });
    ledger = new Ledger(store);
    const have = ledger.totals().accounts;
    for (let first = have; first < accounts; first += OPEN_CHUNK) {
      await ledger.openAccounts(first, Math.min(OPEN_CHUNK, accounts - first), INITIAL_BALANCE);
    }
    await store.commit();
    return { version: store.version, accounts: ledger.totals().accounts, stateBytes: store.stats?.()?.bytes ?? null };
  },

  /** A store of `mib` MiB of 1 KiB records (the cold start's state), committed. */
  async openRecords(name, mib) {
    store = await openStore(name, { module: ledgerModule, autosave: false });
    ledger = null;
    const n = mib * 1024;
    for (let i = 0; i < n; ++i) store.put(recordKey(i), recordBytes(i, 0));
    await store.commit();
    return { version: store.version, records: n };
  },

  /** A new pool with `options`; resolves once its `min` replicas are up. */
  async openPool(options) {
    pool?.close();
    pool = await openPool(store, { queries: QUERIES, ...options });
    const min = options.min ?? 0;
    while (pool.stats().replicas < min || pool.stats().starting > 0) await sleep(5);
    return pool.stats();
  },

  closePool() {
    pool?.close();
    pool = null;
  },

  /** The ledger's audit, once on the page's engine (ms and its report). */
  async auditOnPage() {
    const t0 = performance.now();
    const report = await ledger.audit();
    return { ms: performance.now() - t0, report };
  },

  /**
   * `n` audits over the whole ledger, on the page's engine one after another
   * (each yields to the page between) or all submitted to the pool at once;
   * what the main thread went through meanwhile, and whether every answer
   * is the writer's audit.
   */
  async stream(where, n) {
    const expected = JSON.stringify(await ledger.audit());
    await sleep(100); // that audit's task ends before the measurement starts
    const r = await onMainThread(async () => {
      const reports = [];
      if (where === 'page') {
        for (let i = 0; i < n; ++i) {
          reports.push(await ledger.audit());
          await sleep(0);
        }
      } else {
        const answers = await Promise.all(Array.from({ length: n }, () => pool.call('audit')));
        for (const a of answers) reports.push(decodeAuditReport(a.result));
      }
      return reports;
    });
    const same = r.value.every((report) => JSON.stringify(report) === expected && report.ok);
    return { ...r, value: undefined, queries: n, perSecond: (n * 1000) / r.ms, same };
  },

  /**
   * A step in load: `low.qps` queries per second for `low.ms`, then
   * `high.qps` for `high.ms`, each query the JS report `richest(query)`, submitted on a
   * fixed schedule (open loop: no query waits for another to be submitted).
   * Each answer's queue wait, per phase, and the pool's scale steps.
   */
  async step(low, high, query) {
    const steps = [];
    const stop = pool.on('scale', (s) => steps.push({ ...s }));
    const waits = { low: [], high: [] };
    const pending = [];
    const t0 = performance.now();
    const schedule = [];
    for (let t = 0; t < low.ms; t += 1000 / low.qps) schedule.push({ at: t, phase: 'low' });
    for (let t = 0; t < high.ms; t += 1000 / high.qps) schedule.push({ at: low.ms + t, phase: 'high' });
    for (const { at, phase } of schedule) {
      const delay = t0 + at - performance.now();
      if (delay > 0) await sleep(delay);
      pending.push(pool.call('richest', query).then((a) => waits[phase].push(a.waitMs)));
    }
    await Promise.all(pending);
    stop();
    const stats = pool.stats();
    const summary = (xs) => ({ queries: xs.length, p50Ms: percentile(xs, 50), p95Ms: percentile(xs, 95), maxMs: Math.max(...xs) });
    return {
      low: summary(waits.low),
      high: summary(waits.high),
      peakReplicas: Math.max(stats.replicas, ...steps.map((s) => s.replicas)),
      steps: steps.map((s) => ({ at: Math.round(s.at - t0), direction: s.direction, replicas: s.replicas, reason: s.reason })),
      ms: performance.now() - t0,
    };
  },

  /**
   * How many accounts the JS report `richest` reads in about `targetMs` on
   * one replica (the median of 3 runs over `probe` accounts, scaled).
   */
  async calibrate(targetMs, probe) {
    const runs = [];
    for (let i = 0; i < 3; ++i) {
      const t0 = performance.now();
      const a = await pool.call('richest', { accounts: probe, top: 10 });
      runs.push(performance.now() - t0 - a.waitMs);
    }
    const ms = runs.sort((a, b) => a - b)[1];
    return { probeMs: ms, accounts: Math.max(1000, Math.round((probe * targetMs) / ms)) };
  },

  /** Replica cold start: a new pool's first replica (module instance + restore), `runs` times. */
  async coldStarts(runs) {
    const out = [];
    for (let i = 0; i < runs; ++i) {
      pool?.close();
      pool = await openPool(store, { queries: QUERIES });
      const t0 = performance.now();
      await pool.call('version');
      out.push({ coldStartMs: pool.stats().coldStartMs, firstAnswerMs: performance.now() - t0, replicaBytes: pool.stats().replicaBytes });
    }
    return out;
  },

  /**
   * Follow: a 1 KiB commit on the page, until the pool's replica holds it —
   * the replica's catch-up (stats().followMs: read and apply the changed
   * pages) and, as the page sees it, from commit() resolving to the
   * replica's notice arriving.
   */
  async follows(runs) {
    const out = [];
    for (let i = 0; i < runs; ++i) {
      store.put('probe', recordBytes(1 << 20, i + 1));
      const { version } = await store.commit();
      const t0 = performance.now();
      const end = t0 + 5000;
      while (!pool.stats().list.every((s) => s.version >= version) && performance.now() < end) {
        await new Promise((r) => {
          const c = new MessageChannel();
          c.port1.onmessage = r;
          c.port2.postMessage(0);
        });
      }
      out.push({ followMs: pool.stats().followMs, seenMs: performance.now() - t0 });
      await sleep(20);
    }
    return out;
  },

  /**
   * The writer's transfers per second for `ms`: batches of `batch` transfers,
   * each committed; with `queries`, an audit always running on the pool.
   */
  async writer(ms, batch, queries, seed) {
    let running = true;
    let answered = 0;
    const loop = async () => {
      while (running) {
        await pool.call('audit');
        ++answered;
      }
    };
    const busy = queries ? loop() : Promise.resolve();
    let done = 0;
    let round = 0;
    const accounts = ledger.totals().accounts;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      const t = transfers(batch, accounts, seed + round++);
      await ledger.transferBatch(t.from, t.to, t.amount);
      await store.commit();
      done += batch;
    }
    const elapsed = performance.now() - t0;
    running = false;
    await busy;
    return { transfers: done, perSecond: (done * 1000) / elapsed, queriesAnswered: answered };
  },

  stats() {
    return pool?.stats() ?? null;
  },
};
document.documentElement.dataset.ready = 'true';
