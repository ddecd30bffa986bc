// `make demo`: the ledger demo page in headless Chromium (Debian's, through
// playwright-core), end to end with a real on-disk profile:
//   create 100,000 accounts -> 1,000,000 transfers (C++ fibers) -> commit
//   (strict durability) -> the same burst again, committing every 100,000,
//   while the ledger's audit runs on the pool of read replicas (Workers)
//   -> close the browser -> relaunch on the same profile -> verify the
//   restored state (audit passes, version and totals match)
// then sync (demo-sync.mjs): the ledger's sync server and two profiles as two
// devices, one offline for a while, converging;
// then prints a summary table, writes build/demo/summary.json and
// screenshots (build/demo/*.png). Exits non-zero if verification fails.
//
// Environment: DEMO_ACCOUNTS, DEMO_TRANSFERS, DEMO_BATCH override the sizes.
import { chromium } from 'playwright-core';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.mjs';
import { percentile, runSyncDemo } from './demo-sync.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(repo, 'build/demo');
const ACCOUNTS = Number(process.env.DEMO_ACCOUNTS ?? 100_000);
const TRANSFERS = Number(process.env.DEMO_TRANSFERS ?? 1_000_000);
const BATCH = Number(process.env.DEMO_BATCH ?? 25_000);

const LAUNCH = {
  headless: true,
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1200, height: 720 },
};

async function openPage(profile, url) {
  const context = await chromium.launchPersistentContext(profile, LAUNCH);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('console', (m) => m.type() === 'error' && errors.push(new Error(m.text())));
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 })
    .catch((e) => {
      throw new Error(`the demo page did not become ready: ${errors.map((x) => x.message).join('; ') || e.message}`);
    });
  return { context, page, errors };
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);
const int = (n) => Math.round(n).toLocaleString('en-US');

async function main() {
  await mkdir(outDir, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), 'keepstate-demo-'));
  const server = await startServer({ port: 0 });
  const url = `${server.url}?store=demo-ledger`;
  const failures = [];
  const check = (ok, what) => {
    if (!ok) failures.push(what);
    return ok;
  };
  try {
    console.log(`demo: ${server.url} (headless Chromium, profile ${profile})`);
    // --- Session 1: build the state and commit it. ---
    let { context, page } = await openPage(profile, url);
    const created = await page.evaluate((n) => window.demo.createAccounts(n), ACCOUNTS);
    console.log(`demo: ${int(ACCOUNTS)} accounts in ${int(created.ms)} ms`);
    const run = await page.evaluate(([n, batch]) => window.demo.transfers(n, { batch }), [TRANSFERS, BATCH]);
    console.log(`demo: ${int(TRANSFERS)} transfers in ${int(run.ms)} ms (${int(run.perSecond)}/s)`);
    const commit = await page.evaluate(() => window.demo.commit());
    console.log(`demo: committed version ${commit.version}: ${mb(commit.bytesWritten)} MB in ${int(commit.ms)} ms`);
    // The same burst again, committing every 100,000 transfers, while the ledger's audit runs on
    // the pool of read replicas one after another: each reads a committed version of every account.
    const pooled = await page.evaluate(([n, batch]) => {
      const burst = window.demo.transfers(n, { batch, commitEvery: 4 });
      return Promise.all([burst, window.demo.poolAuditsDuring(burst)]).then(([run, pool]) => ({ run, pool }));
    }, [TRANSFERS, BATCH]);
    const last = await page.evaluate(() => window.demo.commit());
    const poolAudits = pooled.pool.audits;
    const poolWaits = poolAudits.map((a) => a.waitMs);
    const poolWrong = poolAudits.find((a) => !a.ok || a.accounts !== ACCOUNTS || a.total !== ACCOUNTS * 1000 || a.version < commit.version);
    check(poolAudits.length > 0 && poolWrong === undefined, `an audit on the pool: ${JSON.stringify(poolWrong ?? 'none ran')}`);
    console.log(`demo: ${int(TRANSFERS)} more transfers in ${int(pooled.run.ms)} ms (${int(pooled.run.perSecond)}/s) while ${poolAudits.length} audits ran on the pool`);
    const audit1 = await page.evaluate(() => window.demo.audit());
    const totals1 = await page.evaluate(() => window.demo.totals());
    check(audit1.ok, `audit before close: ${audit1.message}`);
    await page.screenshot({ path: join(outDir, 'demo-before-restart.png') });
    await context.close();

    // --- Session 2: relaunch on the same profile; the state must come back. ---
    ({ context, page } = await openPage(profile, url));
    const restored = await page.evaluate(() => ({
      openMs: window.demo.openMs,
      version: window.demo.version,
      dirty: window.demo.dirty,
      totals: window.demo.totals(),
      events: window.demo.events.filter((e) => e.type === 'corruption'),
    }));
    const audit2 = await page.evaluate(() => window.demo.audit());
    const reload = await page.evaluate(() => window.demo.reload());
    check(restored.version === last.version, `restored version ${restored.version}, committed ${last.version}`);
    check(!restored.dirty, 'restored state is dirty');
    check(JSON.stringify(restored.totals) === JSON.stringify(totals1),
      `restored totals ${JSON.stringify(restored.totals)} != ${JSON.stringify(totals1)}`);
    check(audit2.ok, `audit after relaunch: ${audit2.message}`);
    check(restored.events.length === 0, `corruption on restore: ${JSON.stringify(restored.events)}`);
    check(audit2.total === ACCOUNTS * 1000, `total ${audit2.total} != ${ACCOUNTS * 1000}`);
    await page.screenshot({ path: join(outDir, 'demo.png') });
    await context.close();

    // --- Sync: two devices through the ledger's sync server. ---
    console.log('demo: sync, two devices (profiles) through the sync server on SQLite');
    const synced = await runSyncDemo({ webOrigin: server.url.replace(/\/$/, ''), launch: LAUNCH, outDir });
    failures.push(...synced.failures);
    const sync = synced.figures;

    const summary = {
      accounts: ACCOUNTS,
      transfers: TRANSFERS,
      transfersApplied: run.applied,
      transfersRejected: run.rejected,
      createAccountsMs: created.ms,
      transfersMs: run.ms,
      transfersPerSecond: run.perSecond,
      pool: {
        transfersPerSecond: pooled.run.perSecond,
        audits: poolAudits.length,
        auditsOk: poolWrong === undefined,
        versions: [...new Set(poolAudits.map((a) => a.version))],
        auditMsP50: percentile(poolAudits.map((a) => a.ms), 50),
        waitMsP50: percentile(poolWaits, 50),
        waitMsP95: percentile(poolWaits, 95),
        replicas: pooled.pool.stats.replicas,
      },
      commitVersion: commit.version,
      lastCommitVersion: last.version,
      commitMs: commit.ms,
      commitBytes: commit.bytesWritten,
      restoreOpenMs: restored.openMs,
      restoreReloadMs: reload.ms,
      restoredVersion: restored.version,
      auditOk: audit2.ok,
      sync,
      chromium: context.browser()?.version() ?? 'chromium',
      when: new Date().toISOString(),
    };
    await writeFile(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    const rows = [
      ['accounts created', `${int(ACCOUNTS)} in ${int(created.ms)} ms`],
      ['transfers (C++ fibers, batches of ' + int(BATCH) + ')', `${int(TRANSFERS)} in ${int(run.ms)} ms`],
      ['transfers / s', int(run.perSecond)],
      ['  applied / rejected (insufficient funds)', `${int(run.applied)} / ${int(run.rejected)}`],
      ['the same burst, committing, with audits on the pool', `${int(pooled.run.perSecond)} transfers/s (${(pooled.run.perSecond / run.perSecond).toFixed(2)}x the first), versions ${summary.pool.versions[0]}..${summary.pool.versions.at(-1)} audited`],
      ['  audits on the pool meanwhile / all ok', `${poolAudits.length} (p50 ${int(summary.pool.auditMsP50)} ms each, queue wait p95 ${int(summary.pool.waitMsP95)} ms, ${summary.pool.replicas} replica) / ${poolWrong === undefined ? 'ok' : 'FAILED'}`],
      ['commit (strict durability)', `${int(commit.ms)} ms, ${mb(commit.bytesWritten)} MB, version ${commit.version}`],
      ['browser closed, relaunched: open (module + restore)', `${int(restored.openMs)} ms`],
      ['restore only (store.reload())', `${int(reload.ms)} ms`],
      ['restored version / audit', `${restored.version} / ${audit2.ok ? 'ok' : 'FAILED'} (total ${int(audit2.total)})`],
      ['sync: a transfer on device A reaches B\'s page', `p50 ${sync.latencyP50Ms.toFixed(1)} ms, p99 ${sync.latencyP99Ms.toFixed(1)} ms (${sync.pings} transfers; A's call + durable local commit p50 ${sync.localCommitP50Ms.toFixed(1)} ms)`],
      ['sync: B offline, both make transfers', `${int(sync.offlineTransfersEach)} each; B kept ${sync.offlinePending} mutations pending`],
      ['sync: B back online, both converged in', `${int(sync.convergeMs)} ms, server version ${sync.serverVersion}`],
      ['sync: transfers processed once / audit on both', `${int(sync.transfersProcessed)} / ${sync.auditOk ? 'ok' : 'FAILED'}`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log('\nkeepstate ledger demo (headless Chromium, on-disk profile)');
    console.log(`${'measure'.padEnd(w)} | result`);
    console.log(`${'-'.repeat(w)}-|-${'-'.repeat(40)}`);
    for (const [k, v] of rows) console.log(`${k.padEnd(w)} | ${v}`);
    console.log(`\nscreenshots: build/demo/demo.png, build/demo/demo-before-restart.png, build/demo/demo-sync*.png; JSON: build/demo/summary.json`);
    console.log('open the page yourself: `make serve`, then http://127.0.0.1:8080/ in a browser on this machine');
    console.log('  (remote machine: ssh -L 8080:127.0.0.1:8080 <host>, then open the same URL locally)');
  } finally {
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
  if (failures.length > 0) {
    console.error(`\ndemo: FAILED\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log('\ndemo: restored state verified (version, totals, audit); both devices converged (audit, every transfer once)');
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
