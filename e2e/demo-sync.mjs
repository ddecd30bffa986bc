// The sync part of `make demo` (docs/sync.md): the ledger's sync server on its
// embedded default (SQLite in a temporary directory, native-release build) and
// two headless Chromium profiles as two devices, each on the demo page with
// ?sync=...:
//   A opens accounts -> B pulls them -> single transfers on A reach B's page
//   (the latency from A's call to B's watch listener, p50/p99) -> B goes
//   offline (Playwright's network emulation) -> both make transfers -> B comes
//   back online -> both converge on the server's state -> the C++ audit holds on
//   both, and every transfer made on either device was processed exactly once.
// Returns the figures and the checks that failed; e2e/demo.mjs prints them.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer as startSyncServer } from '../js-bindings/test/support/sync-server.mjs';

const SERVER_BINARY = fileURLToPath(new URL('../build/native-release/examples/ledger/keepstate-ledger-server', import.meta.url));
const ACCOUNTS = 1_000;
const PINGS = 40; // single transfers timed from A to B
const OFFLINE_ROUNDS = 10; // batches of transfers on each device while B is offline
const OFFLINE_BATCH = 1_000;

/** The p-th percentile of `xs` (any order); NaN for none. */
export const percentile = (xs, p) => {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const now = () => performance.timeOrigin + performance.now();

async function waitFor(page, fn, arg, what, timeout = 30_000) {
  await page.waitForFunction(fn, arg, { timeout, polling: 5 }).catch((e) => {
    throw new Error(`demo sync: ${what}: ${e.message}`);
  });
}

/** Both devices synced, nothing pending, at the same server version. */
async function converge(a, b) {
  for (let i = 0; i < 20; ++i) {
    const [sa, sb] = [await a.evaluate(() => window.demo.syncNow()), await b.evaluate(() => window.demo.syncNow())];
    if (!sa.error && !sb.error && sa.pending === 0 && sb.pending === 0 && sa.serverVersion === sb.serverVersion) return sa;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('demo sync: the devices did not converge in 20 rounds');
}

export async function runSyncDemo({ webOrigin, launch, outDir }) {
  const failures = [];
  const check = (ok, what) => ok || failures.push(what);
  const server = await startSyncServer({ binary: SERVER_BINARY, tokens: 'demo demo-token\n', args: ['--allow-origin', webOrigin] });
  const profiles = [await mkdtemp(join(tmpdir(), 'keepstate-demo-a-')), await mkdtemp(join(tmpdir(), 'keepstate-demo-b-'))];
  const contexts = [];
  try {
    const url = `${webOrigin}/?store=synced-ledger&sync=${encodeURIComponent(server.url)}&space=demo&token=demo-token`;
    const pages = [];
    for (const profile of profiles) {
      const context = await chromium.launchPersistentContext(profile, launch);
      contexts.push(context);
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(url);
      await waitFor(page, () => document.documentElement.dataset.ready === 'true', null, 'the page did not become ready', 60_000);
      pages.push(page);
    }
    const [pageA, pageB] = pages;

    await pageA.evaluate((n) => window.demo.createAccounts(n), ACCOUNTS);
    await pageA.evaluate(() => window.demo.commit());
    await converge(pageA, pageB);
    check((await pageB.evaluate(() => window.demo.totals())).accounts === ACCOUNTS, 'device B did not receive the accounts');

    // A transfer made on A, committed (which pushes it), reaches B's watch listener (the poke
    // carries the commit). Timed in the pages, from A's call (the clocks of two pages of one
    // machine: ms since the epoch), without the demo's own page work around the call.
    const latencies = [];
    const local = []; // of which: A's call and its durable local commit
    for (let i = 0; i < PINGS; ++i) {
      const heard = await pageB.evaluate(() => window.demo.remoteArrivals.length);
      const { startedAt: started, ms } = await pageA.evaluate(([from, to]) => window.demo.transferOnce(from, to), [i % ACCOUNTS, (i * 7 + 1) % ACCOUNTS]);
      local.push(ms);
      await waitFor(pageB, (n) => window.demo.remoteArrivals.length > n, heard, `transfer ${i + 1} did not reach device B`).catch(async (e) => {
        const [sa, sb] = [await pageA.evaluate(() => window.demo.sync), await pageB.evaluate(() => window.demo.sync)];
        const eb = await pageB.evaluate(() => window.demo.events.slice(-8));
        throw new Error(`${e.message}\n  A: ${JSON.stringify(sa)}\n  B: ${JSON.stringify(sb)}\n  B's events: ${JSON.stringify(eb)}`);
      });
      latencies.push((await pageB.evaluate((n) => window.demo.remoteArrivals[n], heard)) - started);
    }
    latencies.sort((x, y) => x - y);
    local.sort((x, y) => x - y);

    // B offline for a while; both keep working.
    await contexts[1].setOffline(true);
    const batches = async (page) => {
      for (let i = 0; i < OFFLINE_ROUNDS; ++i) {
        await page.evaluate((n) => window.demo.transfers(n, { batch: n }), OFFLINE_BATCH);
        await page.evaluate(() => window.demo.commit());
      }
    };
    await Promise.all([batches(pageA), batches(pageB)]);
    const offline = await pageB.evaluate(() => window.demo.syncNow());
    check(offline.error !== null, 'device B synced while offline');
    check(offline.pending === OFFLINE_ROUNDS, `device B had ${offline.pending} pending mutations offline, not ${OFFLINE_ROUNDS}`);
    await pageB.screenshot({ path: join(outDir, 'demo-sync-offline.png') });

    const back = now();
    await contexts[1].setOffline(false); // the 'online' event starts a round
    const synced = await converge(pageA, pageB);
    const convergeMs = now() - back;

    const [auditA, auditB] = [await pageA.evaluate(() => window.demo.audit()), await pageB.evaluate(() => window.demo.audit())];
    const [totalsA, totalsB] = [await pageA.evaluate(() => window.demo.totals()), await pageB.evaluate(() => window.demo.totals())];
    check(auditA.ok && auditB.ok, `audit: A ${auditA.message}, B ${auditB.message}`);
    check(JSON.stringify(totalsA) === JSON.stringify(totalsB), `totals differ: A ${JSON.stringify(totalsA)}, B ${JSON.stringify(totalsB)}`);
    // Every transfer made on either device was processed once (applied or rejected for funds).
    const made = PINGS + 2 * OFFLINE_ROUNDS * OFFLINE_BATCH;
    const processed = totalsA.transfers + totalsA.rejected;
    check(processed === made, `processed ${processed} transfers, made ${made}`);
    await pageB.screenshot({ path: join(outDir, 'demo-sync.png') });

    return {
      failures,
      figures: {
        accounts: ACCOUNTS,
        latencyP50Ms: percentile(latencies, 50),
        latencyP99Ms: percentile(latencies, 99),
        localCommitP50Ms: percentile(local, 50),
        pings: PINGS,
        offlinePending: offline.pending,
        offlineTransfersEach: OFFLINE_ROUNDS * OFFLINE_BATCH,
        convergeMs,
        serverVersion: synced.serverVersion,
        transfersProcessed: processed,
        auditOk: auditA.ok && auditB.ok,
      },
    };
  } finally {
    for (const c of contexts) await c.close().catch(() => {});
    await server.stop();
    for (const p of profiles) await rm(p, { recursive: true, force: true });
  }
}
