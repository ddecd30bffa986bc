// The ledger demo page: the ledger module (examples/ledger, C++ mutators)
// through the keepstate package, with a small `window.demo` API that
// e2e/demo.mjs and the Playwright suite drive.
//
// URL parameters: store=<name> (default 'demo-ledger'), autosave=<ms>
// (default off: commits are explicit, so "dirty" is visible); sync=<server
// URL>, space=<name> and token=<token>: sync the ledger with the ledger's sync
// server (docs/sync.md) — e2e/demo-sync.mjs opens it so on two devices.
//
// Open it in two tabs: each follows the other's commits (and rebases its own
// pending transfers onto them), and a watch on the ledger's totals record
// repaints the page when they arrive, so both show the same totals live.
import { openPool, openStore } from 'keepstate';
import { ledgerModule, Ledger, LEDGER_KEY, encodeTransferBatch, decodeTransferResult, decodeAuditReport } from '/ledger/client.mjs';
import { LiveChart } from './chart.mjs';

const params = new URLSearchParams(location.search);
const storeName = params.get('store') ?? 'demo-ledger';
const autosave = params.has('autosave') ? Number(params.get('autosave')) : false;
const sync = params.has('sync') ? { url: params.get('sync'), space: params.get('space') ?? storeName, token: params.get('token') ?? undefined } : undefined;
const $ = (id) => document.getElementById(id);
const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

const events = [];
function logEvent(type, detail, bad = false) {
  events.push({ type, detail, at: Date.now() });
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${type}: ${detail}`;
  if (bad) li.className = 'bad';
  $('events').prepend(li);
}

let busy = false;
function setBusy(on, what = '') {
  busy = on;
  for (const b of document.querySelectorAll('button:not([data-free])')) b.disabled = on;
  $('status').textContent = on ? what : 'ready';
}

// A deterministic xorshift32 stream, so runs are reproducible.
let seed = 0x9e3779b9;
function next() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>>= 0);
}

// Progress of long work (openStore's restore, export) in the bar: bytes done of the total.
const MB = (n) => `${(n / 1048576).toFixed(1)} MB`;
function showProgress(what, reports) {
  return (p) => {
    reports.push(p);
    $('progress-label').textContent = what;
    const bar = $('progress');
    if (p.total === undefined) bar.removeAttribute('value'); // indeterminate until the total is known
    else bar.value = p.total === 0 ? 1 : p.done / p.total;
    $('progress-text').textContent = p.total === undefined ? `${MB(p.done)} read` : `${MB(p.done)} of ${MB(p.total)}`;
  };
}
const openProgress = [];
const openStarted = performance.now();
const store = await openStore(storeName, { module: ledgerModule, durability: 'strict', autosave, sync, onProgress: showProgress('opening', openProgress) });
const openMs = performance.now() - openStarted;
const ledger = new Ledger(store);
const chart = new LiveChart($('chart'));

let lastCommit;
let lastAudit;
let tps = 0;
store.on('commit', (c) => chart.commit(c.ms));
store.on('commit', (c) => logEvent('commit', `version ${c.version}, ${(c.bytesWritten / 1048576).toFixed(2)} MB in ${c.ms.toFixed(0)} ms`));
store.on('conflict', (e) => logEvent('conflict', e.message, true));
store.on('corruption', (e) => logEvent('corruption', e.error.message, true));
store.on('remote-commit', (e) => logEvent('remote-commit', `another tab committed version ${e.version}`));
store.on('error', (e) => logEvent('error', `${e.code}: ${e.message}`, true));
store.on('rebase', (e) =>
  logEvent('rebase', `replayed ${e.replayed} pending operations on version ${e.ontoVersion} in ${e.ms.toFixed(1)} ms` +
    (e.dropped.length ? `, dropped ${e.dropped.length}` : ''), e.dropped.length > 0));
// Another tab's (or device's) transfers arrive as changes of the totals record: repaint.
// remoteArrivals: when each arrived (ms since the epoch, to the microsecond), for latencies.
let remoteUpdates = 0;
const remoteArrivals = [];
store.watch({ key: LEDGER_KEY }, (e) => {
  if (e.source === 'local') return;
  remoteArrivals.push(performance.timeOrigin + performance.now());
  ++remoteUpdates;
  logEvent(e.source, `version ${e.version} from another tab${sync ? ' or device' : ''}`);
  render();
});
store.on('sync', (e) => {
  for (const f of e.failed) logEvent('sync', `the server refused ${f.name ?? 'mutation'} #${f.id}: ${f.message}`, true);
  render();
});

function render() {
  const t = ledger.totals();
  $('accounts').textContent = fmt(t.accounts);
  $('total').textContent = fmt(t.total);
  $('transfers').textContent = fmt(t.transfers);
  $('tps').textContent = tps ? fmt(Math.round(tps)) : '–';
  $('version').textContent = fmt(store.version);
  $('dirty').textContent = store.dirty ? 'yes (uncommitted changes)' : 'no';
  $('last-commit').textContent = lastCommit
    ? `v${lastCommit.version}: ${lastCommit.ms.toFixed(0)} ms, ${(lastCommit.bytesWritten / 1048576).toFixed(2)} MB`
    : '–';
  $('opened').textContent = `${openMs.toFixed(0)} ms`;
  $('remote').textContent = fmt(remoteUpdates);
  if (store.sync) {
    const s = store.sync;
    $('sync-box').hidden = false;
    $('sync').textContent = `${s.error ? 'offline' : s.connected ? 'connected' : 'polling'}, server v${s.serverVersion}, ${fmt(s.pending)} pending`;
    $('sync').className = s.error ? 'bad' : '';
  }
  chart.draw();
  if (lastAudit) {
    $('audit').textContent = lastAudit.ok ? 'ok' : 'FAILED';
    $('audit').className = lastAudit.ok ? 'ok' : 'bad';
    $('audit').title = lastAudit.message;
  }
}

// The pool of read replicas (docs/pool.md): opened at the first audit on it,
// its replicas, queue and waits shown live.
let pool = null;
function showPool(s) {
  $('pool').textContent = `${s.replicas} replica${s.replicas === 1 ? '' : 's'} · ${s.busy} busy · ${s.queued} queued`;
  $('pool').title = `${fmt(s.answered)} queries answered; queue wait over the last second: mean ${s.meanWaitMs.toFixed(0)} ms, p95 ${s.p95WaitMs.toFixed(0)} ms`;
  $('pool-wait').textContent = `${s.meanWaitMs.toFixed(0)} ms / ${s.p95WaitMs.toFixed(0)} ms`;
}
async function poolOf() {
  if (pool === null) {
    pool = await openPool(store);
    pool.on('stats', showPool);
    pool.on('scale', (s) => logEvent('pool', `${s.direction === 'up' ? 'added' : 'removed'} a replica (${s.reason}): ${s.replicas} now`));
  }
  return pool;
}

// Yields to the event loop without the 4 ms clamp of setTimeout(0).
const nextTask = () =>
  new Promise((r) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => r();
    channel.port2.postMessage(null);
  });

const demo = {
  storeName,
  store,
  ledger,
  events,
  /** The live chart: `rates` ([s, transfers/s] per call) and `commits` ([s, ms] per commit). */
  chart,
  /** Milliseconds openStore took (module instantiation + restore of the committed state). */
  openMs,
  /** What openStore's onProgress reported ({ done, total } bytes), in order; the bar showed each. */
  openProgress,
  /** The progress reports of the last export(). */
  exportProgress: [],
  get version() {
    return store.version;
  },
  get dirty() {
    return store.dirty;
  },
  /** How many times another tab's commits changed the totals shown here. */
  get remoteUpdates() {
    return remoteUpdates;
  },
  totals: () => ledger.totals(),
  /** store.sync (its error as text), or undefined without the sync parameter. */
  get sync() {
    const s = store.sync;
    return s && { ...s, error: s.error && s.error.message };
  },
  /** When each change of the totals from another tab or device arrived (ms since the epoch). */
  remoteArrivals,
  /** Pushes and pulls now; resolves with `demo.sync`. */
  async syncNow() {
    await store.syncNow();
    render();
    return demo.sync;
  },
  /** Opens n more accounts (ids after the existing ones) with `initial` each. */
  async createAccounts(n, initial = 1000) {
    const first = ledger.totals().accounts;
    const started = performance.now();
    setBusy(true, `creating ${fmt(n)} accounts…`);
    try {
      const totals = await ledger.openAccounts(first, n, initial);
      return { ...totals, ms: performance.now() - started };
    } finally {
      setBusy(false);
      render();
    }
  },
  /**
   * n random transfers among all accounts, in calls of `batch` transfers (each one transaction).
   * `commitEvery`: also start a commit after every that many calls, without waiting for it
   * (the calls go on while it writes; the chart shows its latency). Default 0: none.
   */
  async transfers(n, { batch = 25_000, maxAmount = 100, commitEvery = 0 } = {}) {
    const accounts = ledger.totals().accounts;
    if (accounts < 2) throw new Error('create accounts first');
    setBusy(true, `running ${fmt(n)} transfers…`);
    const started = performance.now();
    let applied = 0;
    let rejected = 0;
    let lastPaint = started;
    try {
      const from = new Uint32Array(batch), to = new Uint32Array(batch), amount = new Uint32Array(batch);
      for (let done = 0; done < n; ) {
        const k = Math.min(batch, n - done);
        for (let i = 0; i < k; ++i) {
          from[i] = next() % accounts;
          to[i] = next() % accounts;
          amount[i] = 1 + (next() % maxAmount);
        }
        const callStarted = performance.now();
        const r = await store.call('transfer_batch', encodeTransferBatch(from, to, amount, 0, k));
        chart.rate(k, performance.now() - callStarted);
        const { applied: a, rejected: j } = decodeTransferResult(r);
        applied += a;
        rejected += j;
        done += k;
        if (commitEvery > 0 && (done / batch) % commitEvery === 0 && done < n) {
          store.commit().then((c) => (lastCommit = c), showError);
        }
        tps = done / ((performance.now() - started) / 1000);
        // Render about 10 times a second, and yield to the event loop after
        // every call: Chromium paints between tasks when a frame is due (52
        // frames in 1.5 s of 25 ms tasks chained this way, measured), so
        // waiting for a frame would only add idle time (up to 16 ms each).
        if (performance.now() - lastPaint > 100) {
          render();
          lastPaint = performance.now();
        }
        await nextTask();
      }
    } finally {
      setBusy(false);
      render();
    }
    const ms = performance.now() - started;
    return { applied, rejected, ms, perSecond: n / (ms / 1000) };
  },
  /**
   * One transfer of 1 from `from` to `to`, committed (which pushes it when synced), with no
   * page work around it: when the call started (ms since the epoch, the clock of
   * remoteArrivals) and what the call and its durable commit took. The sync demo's latency.
   */
  async transferOnce(from, to) {
    const startedAt = performance.timeOrigin + performance.now();
    await ledger.transfer(from, to, 1);
    lastCommit = await store.commit();
    return { startedAt, ms: performance.timeOrigin + performance.now() - startedAt };
  },
  async commit() {
    setBusy(true, 'committing…');
    try {
      lastCommit = await store.commit();
      return lastCommit;
    } finally {
      setBusy(false);
      render();
    }
  },
  async audit() {
    lastAudit = await ledger.audit();
    render();
    return lastAudit;
  },
  /**
   * The ledger's audit on a read replica in a Worker, at least at the version
   * committed now: the page and its transfers go on meanwhile.
   */
  async poolAudit() {
    const started = performance.now();
    const answer = await (await poolOf()).call('audit');
    const report = decodeAuditReport(answer.result);
    const ms = performance.now() - started;
    $('pool-audit').textContent = `${report.ok ? 'ok' : 'FAILED'} at v${answer.version} (${ms.toFixed(0)} ms, waited ${answer.waitMs.toFixed(0)} ms)`;
    $('pool-audit').className = report.ok ? 'ok' : 'bad';
    $('pool-audit').title = report.message;
    showPool(pool.stats());
    return { ...report, version: answer.version, waitMs: answer.waitMs, ms };
  },
  /** Audits on the pool one after another until `until` settles: their reports and the pool's stats. */
  async poolAuditsDuring(until) {
    let done = false;
    until.then(() => (done = true), () => (done = true));
    const audits = [];
    while (!done) audits.push(await demo.poolAudit());
    await until;
    return { audits, stats: { ...pool.stats(), steps: undefined, list: undefined } };
  },
  /** Writes a snapshot file of the committed state (committing first), with its progress in the bar; resolves with its size and duration. */
  async export() {
    const started = performance.now();
    setBusy(true, 'exporting…');
    try {
      demo.exportProgress = [];
      const blob = await store.export({ onProgress: showProgress('export', demo.exportProgress) });
      const link = $('export-link');
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(blob);
      link.download = `${storeName}-v${store.version}.ksnap`;
      link.textContent = `download ${link.download} (${MB(blob.size)})`;
      link.hidden = false;
      return { bytes: blob.size, ms: performance.now() - started, version: store.version };
    } finally {
      setBusy(false);
      render();
    }
  },
  /** Drops uncommitted changes and restores the committed version; resolves with its duration. */
  async reload() {
    const started = performance.now();
    await store.reload();
    const ms = performance.now() - started;
    render();
    return { ms, version: store.version };
  },
};

$('create').onclick = () => demo.createAccounts(Number($('n-accounts').value)).catch(showError);
$('burst').onclick = () =>
  demo.transfers(Number($('n-transfers').value), { commitEvery: $('commit-during').checked ? 4 : 0 }).catch(showError);
$('commit').onclick = () => demo.commit().catch(showError);
$('audit-btn').onclick = () => demo.audit().catch(showError);
$('pool-audit-btn').onclick = () => demo.poolAudit().catch(showError);
$('reload').onclick = () => demo.reload().catch(showError);
$('export').onclick = () => demo.export().catch(showError);
function showError(e) {
  logEvent('error', `${e.code ?? e.name}: ${e.message}`, true);
}

window.demo = demo;
logEvent('open', `store "${storeName}" at version ${store.version} in ${openMs.toFixed(0)} ms`);
setBusy(false);
render();
await demo.audit();
document.documentElement.dataset.ready = 'true';
